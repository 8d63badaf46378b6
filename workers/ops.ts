// The Worker's operations surface that is not a VM's: /healthz, which says whether this deployment can verify tokens
// at all (a relay without a usable key refuses every console and bridge, and a load balancer or uptime check should
// see that), and the switch that serves the demo console only where it was asked for (docs/reference.md).
import { importSigningKey } from "../src/auth/index.ts"
import { audit } from "./audit.ts"
import { tokenKeys } from "./keys.ts"

/** Why /healthz answers 503; the body names it, never a key or a kid. */
export type HealthProblem = "no-keys" | "jwks-invalid" | "no-usable-key"

export const HEALTH_PROBLEMS: ReadonlyArray<HealthProblem> = ["no-keys", "jwks-invalid", "no-usable-key"]

/**
 * Whether the configured keys can verify a token: the key set parses, and at least one Ed25519 key imports or the
 * HS256 secret is long enough. Undefined when healthy.
 */
export const healthProblem = async (env: Env): Promise<HealthProblem | undefined> => {
  const keys = tokenKeys(env)
  if (keys instanceof Error) return keys.message.startsWith("VDRELAY_JWKS") ? "jwks-invalid" : "no-keys"
  const hs256 = keys.hs256 !== undefined && !("_tag" in importSigningKey(keys.hs256))
  const imported = await Promise.all(
    [...(keys.jwks?.values() ?? [])].map((k) => (k._tag === "Ed25519" ? k.key.then(() => true, () => false) : Promise.resolve(false))),
  )
  return hs256 || imported.includes(true) ? undefined : "no-usable-key"
}

let reported: HealthProblem | undefined

/** GET /healthz: 200 "ok", or 503 "unavailable: <problem>" (logged once per isolate and problem as keys-misconfigured). */
export const healthz = async (env: Env): Promise<Response> => {
  const problem = await healthProblem(env)
  if (problem === undefined) return new Response("ok", { headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" } })
  if (reported !== problem) {
    reported = problem
    audit("keys-misconfigured", { problem })
  }
  return new Response(`unavailable: ${problem}\n`, { status: 503, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "retry-after": "60" } })
}

/** The demo console is for development stacks and demos: served only where VDRELAY_DEMO_CONSOLE is "on". */
export const demoConsoleEnabled = (env: Env): boolean => env.VDRELAY_DEMO_CONSOLE === "on"
