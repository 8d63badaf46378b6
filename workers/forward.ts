// The hand-off from the Worker to the VmSession: the verified claims travel in one internal header of a fresh request
// (the Durable Object is reachable only through the Worker's binding); the token itself never reaches the object.
import type { Claims } from "../src/auth/token.ts"
import type { VmRoute } from "./routes.ts"

const HEADER = "x-vdrelay-claims"

export interface ForwardedClaims {
  readonly tenant: string
  readonly vm: string
  readonly role: Claims["role"]
  readonly jti: string
  readonly exp: number
  readonly iat: number
  readonly once?: true
  /** The key that signed the token, for audit lines. */
  readonly kid: string
  /** Bridge tokens: the host key the link must prove it holds (`cnf.jkt`). */
  readonly jkt?: string
  /** Subprotocol to echo on a WebSocket upgrade. */
  readonly protocol?: string
}

export const forwardRequest = (route: VmRoute, claims: Claims, kid: string, protocol: string | undefined, body: string | undefined): Request => {
  const forwarded: ForwardedClaims = {
    tenant: claims.tenant,
    vm: claims.vm,
    role: claims.role,
    jti: claims.jti,
    exp: claims.exp,
    iat: claims.iat,
    kid,
    ...(claims.once === true ? { once: true as const } : {}),
    ...(claims.cnf !== undefined ? { jkt: claims.cnf.jkt } : {}),
    ...(protocol !== undefined ? { protocol } : {}),
  }
  const headers = new Headers({ [HEADER]: JSON.stringify(forwarded) })
  if (route.kind === "console" || route.kind === "agent") headers.set("Upgrade", "websocket")
  return new Request(`https://vmsession.internal/${route.kind}`, { method: route.kind === "policy" ? "PUT" : "GET", headers, body })
}

export const readForwardedClaims = (request: Request): ForwardedClaims | undefined => {
  const raw = request.headers.get(HEADER)
  if (raw === null) return undefined
  try {
    return JSON.parse(raw) as ForwardedClaims
  } catch {
    return undefined
  }
}

/** The internal request applying a revocation to one VM's links (from the Worker or the tenant's authority). */
export const revokeRequest = (tenant: string, vm: string, rule: object): Request => {
  const forwarded: ForwardedClaims = { tenant, vm, role: "admin", jti: "revocation", exp: 0, iat: 0, kid: "" }
  return new Request("https://vmsession.internal/revoke", { method: "POST", headers: { [HEADER]: JSON.stringify(forwarded) }, body: JSON.stringify(rule) })
}
