// The agent messages a console sends and reads, built on vdrelay's protocol codecs: the layout of each direction
// follows the *receiving* side's caps (spec §2), the file name that travels is only a base name, and an encoder
// refusal (a value the layout cannot express) becomes a ClientError rather than a silent drop.
import { type Caps, hasCap } from "../protocol/caps.ts"
import { Cap, MonitorsConfigFlag } from "../protocol/constants.ts"
import type { Parsed } from "../protocol/decoded.ts"
import { type MessageParts, codecOptionsFor, decodeMessage, encodeMessageParts } from "../protocol/message-codec.ts"
import { type AgentMessage, type CodecOptions, messageTypeOf } from "../protocol/messages.ts"
import { ClientError } from "./errors.ts"

export type { AgentMessage } from "../protocol/messages.ts"

/** One monitor as a console thinks of it (the codec wants height before width; so does the wire). */
export interface MonitorConfig {
  readonly width: number
  readonly height: number
  /** Position in the virtual desktop (default 0, 0). */
  readonly x?: number
  readonly y?: number
  /** Bits per pixel (default 32, as spice-gtk sends). */
  readonly depth?: number
}

export interface Encoded {
  readonly type: number
  /** The encoded fields, and the caller's bytes that end the payload (a clipboard's data, a file block) as a view. */
  readonly payload: MessageParts
}

/**
 * Encodes a message for an agent that announced `agentCaps`; throws ClientError("rejected") when it cannot be expressed.
 * A clipboard's data and a file block are not copied: the caller must not change them until the message is acked.
 */
export const encodeForAgent = (msg: AgentMessage, agentCaps: Caps | null): Encoded => {
  const r = encodeMessageParts(msg, codecOptionsFor(agentCaps ?? []))
  if (r._tag !== "Ok") throw new ClientError("rejected", r.detail)
  return { type: messageTypeOf(msg), payload: r.value }
}

/** Decodes a message from the agent, which lays it out for the caps *we* announced. */
export const decodeFromAgent = (type: number, payload: Uint8Array, ourCaps: Caps): Parsed<AgentMessage> =>
  decodeMessage(type, payload, codecOptionsFor(ourCaps))

export const layoutFor = (caps: Caps | null): CodecOptions => codecOptionsFor(caps ?? [])

/**
 * MONITORS_CONFIG with USE_POS and no physical-size array: spice-vdagent 0.22.1 requires exactly 8 + 20n bytes and drops
 * the message otherwise (spec §6), which is what spice-gtk ≥ 0.39 runs into.
 */
export const monitorsConfig = (monitors: ReadonlyArray<MonitorConfig>): AgentMessage => ({
  _tag: "MonitorsConfig",
  flags: MonitorsConfigFlag.UsePos,
  monitors: monitors.map((m) => ({ width: m.width, height: m.height, depth: m.depth ?? 32, x: m.x ?? 0, y: m.y ?? 0 })),
})

/** Only a base name travels: the agent writes into its own transfer folder and must never see a path. */
export const safeBaseName = (name: string): string => {
  const base = name.split(/[\\/]/).filter((s) => s.length > 0).pop() ?? ""
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, "")
  return clean === "." || clean === ".." || clean === "" ? "file" : clean
}

export const agentHas = (caps: Caps | null, cap: number): boolean => caps !== null && hasCap(caps, cap)
export { Cap }
