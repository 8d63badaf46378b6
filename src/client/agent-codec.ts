// Payload codecs for the VDAgent messages a console sends and reads (spec §2): clipboard family with the optional
// selection prefix and grab serial, MONITORS_CONFIG, REPLY, ANNOUNCE_CAPABILITIES, FILE_XFER_*, MAX_CLIPBOARD.
// Encoders build exact payloads (the relay adds the VDAgentMessage header); decoders never throw.
import { FileXferResult } from "../protocol/constants.ts"

const le = (bytes: Uint8Array): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

export interface ClipboardFormat {
  /** Both sides announced CLIPBOARD_SELECTION: payloads start with u8 selection + 3 reserved bytes. */
  readonly selection: boolean
  /** Both sides announced CLIPBOARD_GRAB_SERIAL: a GRAB carries a u32 serial after the selection prefix. */
  readonly serial: boolean
}

const prefix = (fmt: ClipboardFormat, selection: number, extra: number): { out: Uint8Array; view: DataView; at: number } => {
  const head = fmt.selection ? 4 : 0
  const out = new Uint8Array(head + extra)
  if (fmt.selection) out[0] = selection
  return { out, view: le(out), at: head }
}

/** VDAgentClipboardGrab: [sel][serial] u32 types[]. */
export const encodeClipboardGrab = (fmt: ClipboardFormat, selection: number, serial: number, types: ReadonlyArray<number>): Uint8Array => {
  const ser = fmt.serial ? 4 : 0
  const { out, view, at } = prefix(fmt, selection, ser + 4 * types.length)
  if (fmt.serial) view.setUint32(at, serial, true)
  types.forEach((t, i) => view.setUint32(at + ser + 4 * i, t, true))
  return out
}

/** VDAgentClipboardRequest: [sel] u32 type. */
export const encodeClipboardRequest = (fmt: ClipboardFormat, selection: number, type: number): Uint8Array => {
  const { out, view, at } = prefix(fmt, selection, 4)
  view.setUint32(at, type, true)
  return out
}

/** VDAgentClipboard: [sel] u32 type, data. */
export const encodeClipboard = (fmt: ClipboardFormat, selection: number, type: number, data: Uint8Array): Uint8Array => {
  const { out, view, at } = prefix(fmt, selection, 4 + data.length)
  view.setUint32(at, type, true)
  out.set(data, at + 4)
  return out
}

/** VDAgentClipboardRelease: [sel] only. */
export const encodeClipboardRelease = (fmt: ClipboardFormat, selection: number): Uint8Array => prefix(fmt, selection, 0).out

export type ClipboardMessage =
  | { readonly kind: "grab"; readonly selection: number; readonly serial: number | undefined; readonly types: number[] }
  | { readonly kind: "request"; readonly selection: number; readonly type: number }
  | { readonly kind: "data"; readonly selection: number; readonly type: number; readonly data: Uint8Array }
  | { readonly kind: "release"; readonly selection: number }

const CLIPBOARD = 4, GRAB = 7, REQUEST = 8, RELEASE = 9

/** Decodes one of the four clipboard messages; undefined when it is malformed (the SPICE peers log and ignore those). */
export const decodeClipboardMessage = (fmt: ClipboardFormat, type: number, p: Uint8Array): ClipboardMessage | undefined => {
  const head = fmt.selection ? 4 : 0
  // The Linux agent sends a 1-byte RELEASE on session switch whatever the caps say (spec §6): accept it.
  if (type === RELEASE) return p.length <= head || p.length === 1 ? { kind: "release", selection: p.length > 0 && fmt.selection ? p[0]! : 0 } : undefined
  if (p.length < head) return undefined
  const selection = fmt.selection ? p[0]! : 0
  const v = le(p)
  switch (type) {
    case GRAB: {
      const ser = fmt.serial ? 4 : 0
      if (p.length < head + ser || (p.length - head - ser) % 4 !== 0) return undefined
      const types: number[] = []
      for (let at = head + ser; at < p.length; at += 4) types.push(v.getUint32(at, true))
      return { kind: "grab", selection, serial: fmt.serial ? v.getUint32(head, true) : undefined, types }
    }
    case REQUEST:
      return p.length === head + 4 ? { kind: "request", selection, type: v.getUint32(head, true) } : undefined
    case CLIPBOARD:
      return p.length >= head + 4 ? { kind: "data", selection, type: v.getUint32(head, true), data: p.subarray(head + 4) } : undefined
    default:
      return undefined
  }
}

/** VDAgentAnnounceCapabilities: u32 request, u32 caps[]. */
export const encodeAnnounceCapabilities = (request: boolean, caps: ReadonlyArray<number>): Uint8Array => {
  const out = new Uint8Array(4 + 4 * caps.length)
  const v = le(out)
  v.setUint32(0, request ? 1 : 0, true)
  caps.forEach((w, i) => v.setUint32(4 + 4 * i, w >>> 0, true))
  return out
}

export const decodeAnnounceCapabilities = (p: Uint8Array): { readonly request: boolean; readonly caps: number[] } | undefined => {
  if (p.length < 4) return undefined
  const v = le(p)
  const caps: number[] = []
  for (let at = 4; at + 4 <= p.length; at += 4) caps.push(v.getUint32(at, true))
  return { request: v.getUint32(0, true) !== 0, caps }
}

export interface MonitorConfig {
  readonly width: number
  readonly height: number
  /** Position in the virtual desktop (default 0, 0). */
  readonly x?: number
  readonly y?: number
  /** Bits per pixel (default 32, as spice-gtk sends). */
  readonly depth?: number
}

/**
 * VDAgentMonitorsConfig with USE_POS and no physical-size array: spice-vdagent 0.22.1 requires exactly 8 + 20n bytes
 * and drops the message otherwise (spec §6). Each entry is {height, width, depth, x, y}: height first.
 */
export const encodeMonitorsConfig = (monitors: ReadonlyArray<MonitorConfig>): Uint8Array => {
  const out = new Uint8Array(8 + 20 * monitors.length)
  const v = le(out)
  v.setUint32(0, monitors.length, true)
  v.setUint32(4, 1 /* VD_AGENT_CONFIG_MONITORS_FLAG_USE_POS */, true)
  monitors.forEach((m, i) => {
    const at = 8 + 20 * i
    v.setUint32(at, m.height, true)
    v.setUint32(at + 4, m.width, true)
    v.setUint32(at + 8, m.depth ?? 32, true)
    v.setInt32(at + 12, m.x ?? 0, true)
    v.setInt32(at + 16, m.y ?? 0, true)
  })
  return out
}

/** VDAgentReply: u32 type (the message acknowledged), u32 error (1 success, 2 error). */
export const decodeReply = (p: Uint8Array): { readonly type: number; readonly error: number } | undefined =>
  p.length === 8 ? { type: le(p).getUint32(0, true), error: le(p).getUint32(4, true) } : undefined

/** VDAgentMaxClipboard: i32 max (−1 unlimited). */
export const encodeMaxClipboard = (max: number): Uint8Array => {
  const out = new Uint8Array(4)
  le(out).setInt32(0, max, true)
  return out
}

const utf8 = new TextEncoder()

/** GLib key-file value escaping (what the agent's g_key_file parser undoes). */
const escapeKeyFileValue = (s: string): string =>
  s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t").replace(/^ /, "\\s")

/** Only a base name travels: the agent writes into its own transfer folder and must never see a path. */
export const safeBaseName = (name: string): string => {
  const base = name.split(/[\\/]/).filter((s) => s.length > 0).pop() ?? ""
  const clean = base.replace(/[\u0000-\u001f]/g, "")
  return clean === "." || clean === ".." || clean === "" ? "file" : clean
}

/** VDAgentFileXferStartMessage: u32 id, then the NUL-terminated key file (spec §7 item 8). */
export const encodeFileXferStart = (id: number, name: string, size: number): Uint8Array => {
  const text = utf8.encode(`[vdagent-file-xfer]\nname=${escapeKeyFileValue(safeBaseName(name))}\nsize=${size}\n`)
  const out = new Uint8Array(4 + text.length + 1)
  le(out).setUint32(0, id, true)
  out.set(text, 4)
  return out
}

/** VDAgentFileXferStatusMessage: u32 id, u32 result (no detail: the SDK only sends CANCELLED or ERROR). */
export const encodeFileXferStatus = (id: number, result: number): Uint8Array => {
  const out = new Uint8Array(8)
  le(out).setUint32(0, id, true)
  le(out).setUint32(4, result, true)
  return out
}

/** VDAgentFileXferDataMessage: u32 id, u64 size, data. */
export const encodeFileXferData = (id: number, data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(12 + data.length)
  const v = le(out)
  v.setUint32(0, id, true)
  v.setUint32(4, data.length, true)
  v.setUint32(8, Math.floor(data.length / 2 ** 32), true)
  out.set(data, 12)
  return out
}

export interface FileXferStatus {
  readonly id: number
  readonly result: number
  /** NOT_ENOUGH_SPACE: free bytes on the guest; ERROR with detail: the GIO error code. */
  readonly freeBytes?: number
  readonly errorCode?: number
}

export const decodeFileXferStatus = (p: Uint8Array): FileXferStatus | undefined => {
  if (p.length < 8) return undefined
  const v = le(p)
  const id = v.getUint32(0, true), result = v.getUint32(4, true)
  if (result === FileXferResult.NotEnoughSpace && p.length >= 16)
    return { id, result, freeBytes: v.getUint32(8, true) + v.getUint32(12, true) * 2 ** 32 }
  if (result === FileXferResult.Error && p.length >= 13) return { id, result, errorCode: v.getUint32(9, true) }
  return { id, result }
}
