// Checks on every client message before any of it reaches the agent: role, policy, per-type size rules
// (spice-common's, plus the relay's upper bounds: no unbounded MONITORS_CONFIG à la CVE-2017-7506, ≤ 16 monitors).
import type { NoticeCode, Policy } from "../link/types.ts"
import { Cap, MessageType } from "../protocol/constants.ts"
import { hasCap } from "../protocol/caps.ts"
import { clientMessageLimits, checkMessageSize } from "../protocol/size-rules.ts"
import { decodeMessage } from "../protocol/message-codec.ts"
import type { Limits } from "./limits.ts"

export interface Refusal {
  readonly code: NoticeCode
  readonly detail: string
}

const CLIPBOARD_TYPES: ReadonlySet<number> = new Set([
  MessageType.Clipboard,
  MessageType.ClipboardGrab,
  MessageType.ClipboardRequest,
  MessageType.ClipboardRelease,
])
const FILE_XFER_TYPES: ReadonlySet<number> = new Set([MessageType.FileXferStart, MessageType.FileXferStatus, MessageType.FileXferData])
/** Messages only the server side may originate (the relay makes them itself, on the server port). */
const RELAY_ONLY: ReadonlySet<number> = new Set([MessageType.ClientDisconnected, MessageType.GraphicsDeviceInfo])

export const isClipboardType = (type: number): boolean => CLIPBOARD_TYPES.has(type)
export const isFileXferType = (type: number): boolean => FILE_XFER_TYPES.has(type)

/** Whether the policy lets messages of `type` through (either direction). */
export const policyAllows = (policy: Policy, type: number): boolean =>
  !(isClipboardType(type) && !policy.copyPaste) && !(isFileXferType(type) && !policy.fileTransfer)

/** Only CLIPBOARD may be larger than the store-and-forward size, so it alone is streamed. */
export const STREAMED_TYPE = MessageType.Clipboard

/**
 * Checks what the `msg` frame's header tells (type and declared size) against policy and the size rules. The
 * layout (selection prefix, grab serial) is the one the client must use: the agent's announced caps.
 */
export const checkHeader = (type: number, size: number, policy: Policy, limits: Limits, agentCaps: ReadonlyArray<number> | null): Refusal | undefined => {
  if (RELAY_ONLY.has(type)) return { code: "invalid-message", detail: `message type ${type} is sent by the relay only` }
  if (!policyAllows(policy, type))
    return { code: "dropped-by-policy", detail: isClipboardType(type) ? "copy-paste is disabled for this VM" : "file transfer is disabled for this VM" }
  if (size > policy.maxMessageBytes) return { code: "too-large", detail: `message of ${size} bytes exceeds the VM's limit ${policy.maxMessageBytes}` }
  const caps = agentCaps ?? []
  const bad = checkMessageSize(type, size, {
    selection: hasCap(caps, Cap.ClipboardSelection),
    grabSerial: hasCap(caps, Cap.ClipboardGrabSerial),
    limits: clientMessageLimits(policy.maxClipboardBytes),
  })
  if (bad !== undefined) return { code: bad.reason === "MessageTooLarge" ? "too-large" : "invalid-message", detail: bad.detail }
  if (type !== STREAMED_TYPE && size > limits.storeAndForwardBytes)
    return { code: "too-large", detail: `message type ${type} of ${size} bytes exceeds the relay's ${limits.storeAndForwardBytes}` }
  return undefined
}

/** Full decode of a message stored whole (everything but a streamed CLIPBOARD). */
export const checkPayload = (type: number, payload: Uint8Array, agentCaps: ReadonlyArray<number> | null, limits: Limits): Refusal | undefined => {
  const caps = agentCaps ?? []
  const r = decodeMessage(type, payload, {
    selection: hasCap(caps, Cap.ClipboardSelection),
    grabSerial: hasCap(caps, Cap.ClipboardGrabSerial),
    maxMonitors: limits.maxMonitors,
  })
  if (r._tag === "Ok") {
    // A MONITORS_CONFIG with no monitor at all makes no sense from a console; the agent would disable every display.
    if (r.value._tag === "MonitorsConfig" && r.value.monitors.length === 0) return { code: "invalid-message", detail: "MONITORS_CONFIG with no monitor" }
    return undefined
  }
  return { code: "invalid-message", detail: r.detail }
}

