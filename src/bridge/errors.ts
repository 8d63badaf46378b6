// The bridge's one tagged error type: every failure of a socket, the tunnel, QMP or the config carries a `reason`.
import { Data } from "effect"

export type BridgeErrorReason =
  | "ConfigInvalid"
  | "TokenUnreadable"
  | "ChardevUnavailable"
  | "ChardevClosed"
  | "TunnelRefused"
  | "TunnelClosed"
  | "TunnelProtocol"
  | "TunnelTimeout"
  | "QmpUnavailable"
  | "QmpClosed"
  | "QmpProtocol"
  | "LibvirtUnavailable"
  | "MetricsUnavailable"

export class BridgeError extends Data.TaggedError("BridgeError")<{
  readonly reason: BridgeErrorReason
  readonly detail: string
}> {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

/** A short, token-free description of anything thrown by Node or `ws`, for log lines. */
export const describeCause = (cause: unknown): string => {
  if (cause instanceof BridgeError) return cause.message
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code
    return code !== undefined ? `${code}: ${cause.message}` : cause.message
  }
  return String(cause)
}
