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
  readonly once?: true
  /** Subprotocol to echo on a WebSocket upgrade. */
  readonly protocol?: string
}

export const forwardRequest = (route: VmRoute, claims: Claims, protocol: string | undefined, body: string | undefined): Request => {
  const forwarded: ForwardedClaims = {
    tenant: claims.tenant,
    vm: claims.vm,
    role: claims.role,
    jti: claims.jti,
    exp: claims.exp,
    ...(claims.once === true ? { once: true as const } : {}),
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
