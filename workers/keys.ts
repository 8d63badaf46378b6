// The relay's trust configuration from the Worker's environment: the EdDSA key set (VDRELAY_JWKS, public keys only),
// the HS256 secret where a development stack set one on purpose (VDRELAY_SIGNING_KEY), and the clock skew. Used by the
// Worker at the upgrade and by the VmSession when a fresh token arrives over an open link. docs/security.md, "Keys".
import { DEFAULT_SKEW_SECONDS, parseJwks, type KeyEntry, type TokenKeys } from "../src/auth/index.ts"
import { audit } from "./audit.ts"

let announced: string | undefined

/** The verification keys, or an Error naming the deployment mistake (never any key material). */
export const tokenKeys = (env: Env): TokenKeys | Error => {
  const text = env.VDRELAY_JWKS?.trim() ?? ""
  const hs256 = env.VDRELAY_SIGNING_KEY !== undefined && env.VDRELAY_SIGNING_KEY !== "" ? env.VDRELAY_SIGNING_KEY : undefined
  if (text === "") return hs256 === undefined ? new Error("neither VDRELAY_JWKS nor VDRELAY_SIGNING_KEY is set") : { hs256 }
  const jwks = parseJwks(text)
  if (jwks instanceof Error) return new Error(`VDRELAY_JWKS: ${jwks.message}`)
  // One audit line per isolate and key set: a rotation shows in the logs as a new list of key ids.
  if (announced !== text) {
    announced = text
    const kids = (t: KeyEntry["_tag"]) => [...jwks.values()].filter((k) => k._tag === t).map((k) => k.kid).join(",")
    audit("keys-loaded", { kids: kids("Ed25519"), unsupported: kids("Unsupported"), hs256: hs256 !== undefined })
  }
  return hs256 === undefined ? { jwks } : { jwks, hs256 }
}

/** Clock skew tolerated on `exp` and `nbf`, at the upgrade and on open links (VDRELAY_CLOCK_SKEW_SECONDS, 0–300). */
export const skewSeconds = (env: Env): number => {
  const n = Number(env.VDRELAY_CLOCK_SKEW_SECONDS ?? "")
  return env.VDRELAY_CLOCK_SKEW_SECONDS !== undefined && Number.isSafeInteger(n) && n >= 0 && n <= 300 ? n : DEFAULT_SKEW_SECONDS
}
