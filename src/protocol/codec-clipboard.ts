// Codecs for VDAgentClipboard, VDAgentClipboardGrab, VDAgentClipboardRequest and VDAgentClipboardRelease (spec §2):
// the selection prefix (+SEL) and grab serial (+SER) exist only when the sender's peer announced the matching caps.
import { type Parsed, invalid, parsed } from "./decoded.ts"
import type { Clipboard, ClipboardGrab, ClipboardRelease, ClipboardRequest, CodecOptions } from "./messages.ts"
import { Writer, badSize, u32At } from "./wire.ts"

type Layout = Pick<CodecOptions, "selection" | "grabSerial">

const SELECTION_PREFIX = 4
const prefixOf = (o: Layout): number => (o.selection ? SELECTION_PREFIX : 0)
const selectionOf = (p: Uint8Array, o: Layout): number => (o.selection ? p[0]! : 0)

export const decodeClipboard = (p: Uint8Array, o: Layout): Parsed<Clipboard> => {
  const head = prefixOf(o) + 4
  if (p.length < head) return badSize("CLIPBOARD", p.length, `≥ ${head}`)
  return parsed({ _tag: "Clipboard", selection: selectionOf(p, o), dataType: u32At(p, head - 4), data: p.subarray(head) })
}

export const decodeClipboardGrab = (p: Uint8Array, o: Layout): Parsed<ClipboardGrab> => {
  const pre = prefixOf(o)
  const head = pre + (o.grabSerial ? 4 : 0)
  if (p.length < head) return badSize("CLIPBOARD_GRAB", p.length, `≥ ${head}`)
  // Receivers read (size − head) / 4 types and ignore a ragged tail (spice-common uint32_from_le).
  const types: number[] = []
  for (let at = head; at + 4 <= p.length; at += 4) types.push(u32At(p, at))
  const selection = selectionOf(p, o)
  return parsed(o.grabSerial ? { _tag: "ClipboardGrab", selection, serial: u32At(p, pre), types } : { _tag: "ClipboardGrab", selection, types })
}

export const decodeClipboardRequest = (p: Uint8Array, o: Layout): Parsed<ClipboardRequest> => {
  const size = prefixOf(o) + 4
  if (p.length !== size) return badSize("CLIPBOARD_REQUEST", p.length, `= ${size}`)
  return parsed({ _tag: "ClipboardRequest", selection: selectionOf(p, o), dataType: u32At(p, size - 4) })
}

export const decodeClipboardRelease = (p: Uint8Array, o: Layout): Parsed<ClipboardRelease> => {
  // spice-vdagentd 0.22.1 `release_clipboards` sends the selection as a lone byte whatever the caps (spec §6, §11).
  if (p.length === 1) return parsed({ _tag: "ClipboardRelease", selection: p[0]! })
  const size = prefixOf(o)
  if (p.length !== size) return badSize("CLIPBOARD_RELEASE", p.length, `= ${size} (or the 1-byte agent quirk)`)
  return parsed({ _tag: "ClipboardRelease", selection: selectionOf(p, o) })
}

const writeSelection = (w: Writer, selection: number, o: Layout): Writer => {
  if (o.selection) return w.u8(selection, "selection").skip(3)
  if (selection !== 0) w.fail("Unrepresentable", `selection ${selection} needs the peer's CLIPBOARD_SELECTION cap`)
  return w
}

export const encodeClipboard = (m: Clipboard, o: Layout): Parsed<Uint8Array> => {
  const w = new Writer(prefixOf(o) + 4 + m.data.length)
  return writeClipboardHead(w, m, o).bytes(m.data).result()
}

/** CLIPBOARD's fields before its data (selection prefix, type), for a sender that keeps the data apart (no copy). */
export const encodeClipboardHead = (m: Clipboard, o: Layout): Parsed<Uint8Array> => writeClipboardHead(new Writer(prefixOf(o) + 4), m, o).result()

const writeClipboardHead = (w: Writer, m: Clipboard, o: Layout): Writer => writeSelection(w, m.selection, o).u32(m.dataType, "dataType")

export const encodeClipboardGrab = (m: ClipboardGrab, o: Layout): Parsed<Uint8Array> => {
  const w = new Writer(prefixOf(o) + (o.grabSerial ? 4 : 0) + 4 * m.types.length)
  writeSelection(w, m.selection, o)
  // A serial is dropped for a peer without GRAB_SERIAL (what VDD and GTK send then); it cannot be invented.
  if (o.grabSerial) {
    if (m.serial === undefined) return invalid("Unrepresentable", w.at, "the peer's CLIPBOARD_GRAB_SERIAL layout needs a serial")
    w.u32(m.serial, "serial")
  }
  for (const t of m.types) w.u32(t, "type")
  return w.result()
}

export const encodeClipboardRequest = (m: ClipboardRequest, o: Layout): Parsed<Uint8Array> =>
  writeSelection(new Writer(prefixOf(o) + 4), m.selection, o).u32(m.dataType, "dataType").result()

export const encodeClipboardRelease = (m: ClipboardRelease, o: Layout): Parsed<Uint8Array> =>
  writeSelection(new Writer(prefixOf(o)), m.selection, o).result()
