// The SDK's one error type: every rejected promise and every "error" event carries a ClientError with a `reason`.
import type { LinkErrorCode, NoticeCode } from "../link/types.ts"

export type ClientErrorReason =
  /** The first connection attempt failed (network, refused upgrade, bad token, wrong URL). */
  | "connect-failed"
  /** The relay closed the link for good (policy, protocol, replaced) or `close()` was called. */
  | "closed"
  /** A method that sends to the agent was called on a viewer. */
  | "not-controller"
  /** The link dropped before the relay took the message, and the relay did not keep this console's seat. */
  | "interrupted"
  | "agent-not-connected"
  /** The agent does not announce the capability the call needs (e.g. CLIPBOARD_BY_DEMAND, MONITORS_CONFIG). */
  | "not-supported"
  /** The relay refused the message: its code is in `notice`. */
  | "rejected"
  | "too-large"
  /**
   * The relay gave up an agent message it had half sent to this console (`abort`): its notice code is in `notice`
   * (e.g. `dropped-by-disconnect` when the agent connection ended mid-message, `role-changed`).
   */
  | "aborted"
  | "cancelled"
  /** The agent answered with a failure (REPLY error, FILE_XFER_STATUS other than success). */
  | "agent-error"
  /** File transfer refused: the agent announces FILE_XFER_DISABLED or the relay's policy drops it. */
  | "disabled"
  | "timeout"
  /** The relay sent a frame this SDK cannot decode or did not expect. */
  | "protocol"
  /**
   * The token is no good any more: expired (and no fresh one from the token source), revoked, or refused by the relay
   * (close 4401, or a reconnect refused right after one). Retrying with the same credentials would only repeat it.
   */
  | "auth"

export class ClientError extends Error {
  override readonly name = "ClientError"
  constructor(
    readonly reason: ClientErrorReason,
    readonly detail: string,
    readonly extra: { readonly notice?: NoticeCode; readonly link?: LinkErrorCode; readonly code?: number } = {},
  ) {
    super(`${reason}: ${detail}`)
  }
}

/** Notice codes that mean the relay dropped our message for good, mapped to the reason a caller sees. */
export const reasonForNotice = (code: NoticeCode): ClientErrorReason => {
  switch (code) {
    case "dropped-by-policy":
      return "disabled"
    case "dropped-by-role":
    case "role-changed":
      return "not-controller"
    case "agent-not-connected":
    case "dropped-by-disconnect":
      return "agent-not-connected"
    case "too-large":
      return "too-large"
    default:
      return "rejected"
  }
}
