// The one mapping between link errors and WebSocket close codes (RFC 6455 §7.4.1 plus two application codes), used by
// every adapter that closes a link and by every peer that explains a close.
import type { LinkErrorCode } from "./types.ts"

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  /** No close frame was received (the TCP connection or process died); never sent, only observed. */
  Abnormal: 1006,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011,
  /** Another bridge took the VM, or another controller took over this seat. */
  Replaced: 4000,
  /** A viewer fell behind its queue cap. */
  SlowConsumer: 4001,
  /**
   * Authentication ended the link: its token expired (and no fresh one came over the link), was revoked, a fresh one
   * was refused, or a bridge could not prove it holds its host key. Get a new token before reconnecting.
   */
  Auth: 4401,
} as const

export const closeCodeOf = (code: LinkErrorCode): number => {
  switch (code) {
    case "protocol":
      return CloseCode.ProtocolError
    case "policy":
      return CloseCode.PolicyViolation
    case "too-big":
      return CloseCode.MessageTooBig
    case "internal":
      return CloseCode.InternalError
    case "replaced":
      return CloseCode.Replaced
    case "slow-consumer":
      return CloseCode.SlowConsumer
    case "going-away":
      return CloseCode.GoingAway
    case "auth":
      return CloseCode.Auth
  }
}

/** The link error a received close code stands for; undefined for a normal close or a code we never send. */
export const linkErrorOfClose = (code: number): LinkErrorCode | undefined => {
  switch (code) {
    case CloseCode.ProtocolError:
      return "protocol"
    case CloseCode.PolicyViolation:
      return "policy"
    case CloseCode.MessageTooBig:
      return "too-big"
    case CloseCode.InternalError:
      return "internal"
    case CloseCode.Replaced:
      return "replaced"
    case CloseCode.SlowConsumer:
      return "slow-consumer"
    case CloseCode.GoingAway:
      return "going-away"
    case CloseCode.Auth:
      return "auth"
    default:
      return undefined
  }
}

/** A close reason fits in 123 UTF-8 bytes (RFC 6455 §5.5: control frame payload ≤ 125, minus the code). */
export const closeReason = (detail: string): string => {
  const bytes = new TextEncoder().encode(detail)
  if (bytes.length <= 123) return detail
  let cut = 120
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--
  return `${new TextDecoder().decode(bytes.subarray(0, cut))}...`
}
