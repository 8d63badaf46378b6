// Authentication and authorisation of a request at the edge, before any Durable Object is touched: Origin, the token
// (Sec-WebSocket-Protocol for browsers, Authorization: Bearer for everyone else), its signature and lifetime, the role
// the route needs, the VM named in the URL against the VM in the claims, and that a bridge token names its host key.
// See docs/security.md.
import { HS256_KID, tokenKid, verifyToken, type AuthErrorReason, type Claims } from "../src/auth/token.ts"
import { audit } from "./audit.ts"
import { skewSeconds, tokenKeys } from "./keys.ts"
import { rolesFor, type AuthRoute } from "./routes.ts"

/** The link subprotocol; the only one the relay ever echoes. */
export const SUBPROTOCOL = "vdrelay.v1"
/** Browsers cannot set headers on a WebSocket: they offer the token as a second subprotocol with this prefix. */
export const TOKEN_PROTOCOL_PREFIX = "vdrelay.token."

export interface Refusal {
  readonly _tag: "Refusal"
  readonly status: number
  /** Short, safe to show the caller: never the token, never a stack. */
  readonly reason: string
  /** The key id the token named, for the audit line (unverified). */
  readonly kid?: string
}
export interface Authorized {
  readonly _tag: "Authorized"
  readonly claims: Claims
  /** The key that signed the token (`hs256` for the development secret). */
  readonly kid: string
  /** The subprotocol to echo on the upgrade, if the client offered one. */
  readonly protocol: string | undefined
}

const refuse = (status: number, reason: string, kid?: string): Refusal => ({ _tag: "Refusal", status, reason, ...(kid !== undefined ? { kid } : {}) })

/** `*` allows any Origin; otherwise a comma-separated list, and the relay's own origin is always allowed. */
export const originAllowed = (origin: string | null, requestUrl: string, allowed: string): boolean => {
  if (origin === null) return true // not a browser: Origin protects browsers' ambient credentials, others can forge it
  if (allowed.trim() === "*") return true
  if (origin === new URL(requestUrl).origin) return true
  return allowed.split(",").some((o) => o.trim() === origin)
}

interface Credential {
  readonly token: string | undefined
  readonly protocol: string | undefined
}

const readCredential = (request: Request): Credential | Refusal => {
  const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "")
  if (offered.length > 0 && !offered.includes(SUBPROTOCOL)) return refuse(400, `subprotocol ${SUBPROTOCOL} required`)
  const protocol = offered.length > 0 ? SUBPROTOCOL : undefined
  const bearer = /^Bearer ([A-Za-z0-9._-]+)$/.exec(request.headers.get("Authorization") ?? "")?.[1]
  const fromProtocol = offered.filter((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX)).map((p) => p.slice(TOKEN_PROTOCOL_PREFIX.length))
  if (fromProtocol.length > 1 || (fromProtocol.length === 1 && bearer !== undefined)) return refuse(400, "more than one token")
  return { token: bearer ?? fromProtocol[0], protocol }
}

const statusOf = (reason: AuthErrorReason): number => (reason === "bad-key" ? 500 : 401)

export const authorize = async (request: Request, route: AuthRoute, env: Env): Promise<Authorized | Refusal> => {
  if (!originAllowed(request.headers.get("Origin"), request.url, env.ALLOWED_ORIGINS)) return refuse(403, "origin not allowed")
  const cred = readCredential(request)
  if ("_tag" in cred) return cred
  if (cred.token === undefined) return refuse(401, "token required")
  const keys = tokenKeys(env)
  if (keys instanceof Error) {
    audit("keys-misconfigured", { detail: keys.message })
    return refuse(500, "relay misconfigured")
  }
  const verified = await verifyToken(keys, cred.token, { skewSeconds: skewSeconds(env) })
  const kid = tokenKid(cred.token)
  if (verified._tag === "AuthError") return refuse(statusOf(verified.reason), verified.reason === "bad-key" ? "relay misconfigured" : verified.reason, kid)
  const { claims } = verified
  if (!rolesFor[route.kind].includes(claims.role)) return refuse(403, `role ${claims.role} cannot use this route`, kid)
  if ("vm" in route && claims.vm !== route.vm) return refuse(403, "token is for another VM", kid)
  // A bridge token is a standing credential kept on a host: without a host key to prove, a copy of it would be enough
  // to displace the real bridge. Only the development secret's tokens are trusted bare.
  if (claims.role === "bridge" && claims.cnf === undefined && verified.kid !== HS256_KID) return refuse(401, "bridge token names no host key (cnf)", kid)
  return { _tag: "Authorized", claims, kid: verified.kid, protocol: cred.protocol }
}
