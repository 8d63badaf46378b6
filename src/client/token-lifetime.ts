// What the SDK reads of its own token: issue and expiry times, from the payload, unverified (the relay verifies; the
// SDK only needs to know when to ask its token source for a fresh one, and not to dial with a token already expired).
import { decodeBase64url } from "../auth/base64url.ts"

export interface TokenLifetime {
  /** Seconds since the epoch. */
  readonly iat: number
  readonly exp: number
}

export const tokenLifetime = (token: string): TokenLifetime | undefined => {
  const bytes = decodeBase64url(token.split(".")[1] ?? "")
  if (bytes === null) return undefined
  try {
    const c = JSON.parse(new TextDecoder().decode(bytes)) as { iat?: unknown; exp?: unknown }
    return typeof c.iat === "number" && typeof c.exp === "number" && c.exp > c.iat ? { iat: c.iat, exp: c.exp } : undefined
  } catch {
    return undefined
  }
}

/** When to ask for a fresh token: a fifth of the lifetime before expiry, at most a minute before. Ms since the epoch. */
export const refreshAt = (l: TokenLifetime): number => (l.exp - Math.min(60, (l.exp - l.iat) / 5)) * 1000

/**
 * Grace on the SDK's own expiry check: the relay tolerates some clock skew (30 s by default), and the console's clock
 * may be off too; a token this far past its expiry by the console's clock is not worth a dial.
 */
export const EXPIRED_GRACE_SECONDS = 60
