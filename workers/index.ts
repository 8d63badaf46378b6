// The Worker: routes, authenticates and authorises every request before any VmSession is touched (revocations are
// checked with the tenant's TenantAuthority), then hands the request to the VmSession named by the verified claims
// (tenant/vm), never by anything else in the request. Every security decision leaves an audit line (audit.ts).
import { forwardRequest, revokeRequest } from "./forward.ts"
import { authorize, type Authorized } from "./edge-auth.ts"
import { audit } from "./audit.ts"
import { serveConsole } from "./console/index.ts"
import { matchRoute, type AuthRoute } from "./routes.ts"
import { mergePolicy } from "./status.ts"
import { demoConsoleEnabled, healthz } from "./ops.ts"
import { defaultPolicy } from "../src/link/types.ts"
import type { Revocation } from "./link-auth.ts"

export { VmSession } from "./vm-session.ts"
export { TenantAuthority } from "./tenant-authority.ts"

/** Largest PUT /policy or POST revocation body accepted. */
const MAX_POLICY_BODY = 4096
/** How long a revoked token id is remembered when the revocation does not say when the token expires: a year. */
const DEFAULT_JTI_MEMORY_SECONDS = 366 * 24 * 3600

const refusal = (status: number, reason: string, headers?: HeadersInit): Response =>
  new Response(`${reason}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } })

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url)
    const m = matchRoute(request.method, url.pathname)
    if (m._tag === "NotFound") return refusal(404, "not found")
    if (m._tag === "BadMethod") return refusal(405, "method not allowed", { Allow: m.allow })
    const route = m.route
    if (route.kind === "healthz") return healthz(env)
    if (route.kind === "console-page") return demoConsoleEnabled(env) ? serveConsole(request, route.path) : refusal(404, "not found")
    return authRoute(request, route, env)
  },
} satisfies ExportedHandler<Env>

const authRoute = async (request: Request, route: AuthRoute, env: Env): Promise<Response> => {
  const upgrade = route.kind === "console" || route.kind === "agent"
  if (upgrade && request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return refusal(426, "websocket upgrade required", { Upgrade: "websocket" })
  }
  const auth = await authorize(request, route, env)
  if (auth._tag === "Refusal") {
    audit("refused", { route: route.kind, vm: "vm" in route ? route.vm : undefined, status: auth.status, reason: auth.reason, kid: auth.kid })
    return refusal(auth.status, auth.reason, auth.status === 401 ? { "WWW-Authenticate": 'Bearer realm="vdrelay"' } : undefined)
  }
  const { tenant, vm, jti, iat, role } = auth.claims
  const authority = env.TENANT_AUTHORITY.get(env.TENANT_AUTHORITY.idFromName(tenant))
  const revoked = await authority.check({ tenant, vm, jti, iat, register: upgrade })
  if (revoked !== null) {
    audit("refused", { route: route.kind, tenant, vm, role, jti, kid: auth.kid, status: 401, reason: revoked })
    return refusal(401, revoked, { "WWW-Authenticate": 'Bearer realm="vdrelay"' })
  }
  let body: string | undefined
  if (route.kind === "policy" || route.kind === "revocations" || route.kind === "tenant-revocations") {
    const text = await readLimited(request, MAX_POLICY_BODY)
    if (text === undefined) return refusal(413, "body too large")
    body = text
    if (route.kind === "policy" && !validPolicyPatch(body)) return refusal(400, "bad policy")
  }
  if (route.kind === "revocations" || route.kind === "tenant-revocations") {
    const rule = revocationOf(body ?? "", route.kind === "revocations" ? "vm" : "tenant")
    if (rule === undefined) return refusal(400, "bad revocation")
    return revoke(route, rule, auth, env)
  }
  const stub = env.VM_SESSION.get(env.VM_SESSION.idFromName(`${tenant}/${vm}`))
  const res = await stub.fetch(forwardRequest(route, auth.claims, auth.kid, auth.protocol, body))
  if (upgrade && res.status === 101) audit("join", { route: route.kind, tenant, vm, role, jti, kid: auth.kid })
  if (route.kind === "policy" && res.ok) audit("policy-change", { tenant, vm, jti, kid: auth.kid, policy: body })
  return res
}

const revoke = async (route: Extract<AuthRoute, { kind: "revocations" | "tenant-revocations" }>, rule: Revocation, auth: Authorized, env: Env): Promise<Response> => {
  const { tenant, jti } = auth.claims
  const kid = auth.kid
  let result: { readonly vms: number; readonly closed: number }
  if (route.kind === "revocations") {
    const stub = env.VM_SESSION.get(env.VM_SESSION.idFromName(`${tenant}/${route.vm}`))
    const r = (await (await stub.fetch(revokeRequest(tenant, route.vm, rule))).json()) as { closed: number }
    result = { vms: 1, closed: r.closed }
  } else {
    result = await env.TENANT_AUTHORITY.get(env.TENANT_AUTHORITY.idFromName(tenant)).revoke(tenant, rule)
  }
  const what = "jti" in rule ? { revokedJti: rule.jti } : { issuedBefore: rule.issuedBefore }
  audit("revocation", { tenant, vm: "vm" in route ? route.vm : "*", by: jti, kid, ...what, vms: result.vms, closed: result.closed })
  return Response.json({ ...rule, ...result })
}

/**
 * The public revocation body: `{"jti": id, "exp"?: seconds}` (one token; `exp` bounds how long the id is kept) or
 * `{"issuedBefore"?: seconds}` (every token whose `iat` is earlier; default: the current second, so tokens issued from
 * now on, such as the replacements, stay valid). Anything else is refused.
 */
const revocationOf = (body: string, scope: "vm" | "tenant"): Revocation | undefined => {
  let v: unknown
  try {
    v = JSON.parse(body === "" ? "{}" : body)
  } catch {
    return undefined
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined
  const o = v as Record<string, unknown>
  const now = Math.floor(Date.now() / 1000)
  const seconds = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0
  const keys = Object.keys(o)
  if ("jti" in o) {
    if (keys.some((k) => k !== "jti" && k !== "exp") || typeof o.jti !== "string" || o.jti.length < 8 || o.jti.length > 128) return undefined
    if (o.exp !== undefined && !seconds(o.exp)) return undefined
    return { jti: o.jti, until: o.exp ?? now + DEFAULT_JTI_MEMORY_SECONDS }
  }
  if (keys.some((k) => k !== "issuedBefore")) return undefined
  if (o.issuedBefore !== undefined && !seconds(o.issuedBefore)) return undefined
  return { scope, issuedBefore: o.issuedBefore ?? now }
}

/**
 * The body as text if it has at most `max` bytes, else undefined: a longer body is refused after `max` bytes, not
 * buffered whole first (an operator token must not be a way to make the Worker hold megabytes).
 */
const readLimited = async (request: Request, max: number): Promise<string | undefined> => {
  if (Number(request.headers.get("Content-Length") ?? "0") > max) return undefined
  const reader = request.body?.getReader()
  if (reader === undefined) return ""
  const parts: Uint8Array[] = []
  let n = 0
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    n += r.value.byteLength
    if (n > max) {
      await reader.cancel()
      return undefined
    }
    parts.push(r.value)
  }
  const all = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    all.set(p, at)
    at += p.byteLength
  }
  return new TextDecoder().decode(all)
}

const validPolicyPatch = (body: string): boolean => {
  try {
    return mergePolicy(defaultPolicy, JSON.parse(body)) !== undefined
  } catch {
    return false
  }
}
