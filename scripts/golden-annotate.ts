// Turns captured vdagent wire bytes into commented hex lines, one line per field (spec §1.2, §1.3, §2): the body of
// each test/golden/*.hex file that scripts/capture-golden.ts writes.
import { readU32LE as u32 } from "../src/protocol/bytes.ts"
import { Cap, CHUNK_HEADER_SIZE, FileXferResult, MessageType, messageTypeName } from "../src/protocol/constants.ts"

interface Field {
  readonly bytes: Uint8Array
  readonly comment: string
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex")
const nameOf = (table: Record<string, number>, v: number): string => Object.entries(table).find(([, x]) => x === v)?.[0] ?? `unknown ${v}`
const capNames = (word: number, base: number): string =>
  Array.from({ length: 32 }, (_, b) => b)
    .filter((b) => (word >>> b) & 1)
    .map((b) => nameOf(Cap, base + b))
    .join(", ")
/** Text as a JSON string literal, shortened: the hex carries the bytes, the comment only has to say what they are. */
const text = (b: Uint8Array): string => {
  const t = JSON.stringify(new TextDecoder().decode(b))
  return t.length <= 72 ? t : `${t.slice(0, 60)}…" (${b.length} bytes)`
}

/** Reads fields off a payload in order. */
class Cursor {
  at = 0
  readonly fields: Field[] = []
  constructor(readonly b: Uint8Array) {}
  get left(): number {
    return this.b.length - this.at
  }
  take(n: number, comment: (bytes: Uint8Array) => string): Uint8Array {
    const bytes = this.b.subarray(this.at, this.at + n)
    this.at += bytes.length
    this.fields.push({ bytes, comment: comment(bytes) })
    return bytes
  }
  u32(name: string, describe: (v: number) => string = (v) => `${v}`): number {
    const v = u32(this.b, this.at)
    this.take(4, () => `${name} = ${describe(v)}`)
    return v
  }
  selection(): void {
    this.take(1, (s) => `selection = ${s[0]} (${nameOf({ CLIPBOARD: 0, PRIMARY: 1, SECONDARY: 2 }, s[0]!)})`)
    this.take(3, () => "__reserved[3] = 0")
  }
}

const clipType = (v: number): string => `${v} (${nameOf({ NONE: 0, UTF8_TEXT: 1, IMAGE_PNG: 2, IMAGE_BMP: 3, IMAGE_TIFF: 4, IMAGE_JPG: 5, FILE_LIST: 6 }, v)})`

/** Body fields by message type; `withSelection` = the selection prefix is present (the client announced the cap). */
const bodyFields = (type: number, body: Uint8Array, withSelection: boolean): Field[] => {
  const c = new Cursor(body)
  switch (type) {
    case MessageType.AnnounceCapabilities:
      c.u32("request", (v) => `${v} (${v === 1 ? "please answer with your caps" : "answer"})`)
      for (let w = 0; c.left >= 4; w++) c.u32(`caps[${w}]`, (v) => `0x${v.toString(16).padStart(8, "0")}: ${capNames(v, w * 32)}`)
      break
    case MessageType.MonitorsConfig: {
      const n = c.u32("num_of_monitors")
      c.u32("flags", (v) => `${v}${v & 1 ? " USE_POS" : ""}${v & 2 ? " PHYSICAL_SIZE" : ""}`)
      for (let i = 0; i < n; i++) for (const f of ["height", "width", "depth", "x", "y"]) c.u32(`monitors[${i}].${f}`)
      break
    }
    case MessageType.Reply:
      c.u32("type", (v) => `${v} (${messageTypeName(v)} acknowledged)`)
      c.u32("error", (v) => `${v} (${nameOf({ SUCCESS: 1, ERROR: 2 }, v)})`)
      break
    case MessageType.Clipboard:
      if (withSelection) c.selection()
      c.u32("type", clipType)
      c.take(c.left, (d) => `data = ${text(d)}`)
      break
    case MessageType.ClipboardGrab:
      if (withSelection) c.selection()
      c.u32("serial", (v) => `${v} (the client announced CLIPBOARD_GRAB_SERIAL)`)
      for (let i = 0; c.left >= 4; i++) c.u32(`types[${i}]`, clipType)
      break
    case MessageType.ClipboardRequest:
      if (withSelection) c.selection()
      c.u32("type", clipType)
      break
    case MessageType.ClipboardRelease:
      if (body.length === 1) c.take(1, (s) => `selection = ${s[0]}, alone: a 1-byte body (0.22.1 quirk, spec §6), not the 4-byte selection prefix`)
      else if (withSelection) c.selection()
      break
    case MessageType.FileXferStart:
      c.u32("id")
      c.take(c.left, (d) => `data = GLib key file, NUL-terminated: ${text(d)}`)
      break
    case MessageType.FileXferStatus:
      c.u32("id")
      c.u32("result", (v) => `${v} (${nameOf(FileXferResult, v)})`)
      if (c.left > 0) c.take(c.left, () => "data (detail)")
      break
    case MessageType.FileXferData: {
      c.u32("id")
      const size = new DataView(body.buffer, body.byteOffset + 4, 8).getBigUint64(0, true)
      c.take(8, () => `size = ${size} (u64)`)
      c.take(c.left, (d) => `data = ${text(d)}`)
      break
    }
    case MessageType.MouseState:
      for (const f of ["x", "y", "buttons"]) c.u32(f)
      c.take(1, (d) => `display_id = ${d[0]}`)
      break
  }
  if (c.left > 0) c.take(c.left, () => "unparsed")
  return c.fields
}

const messageFields = (type: number, size: number, body: Uint8Array, withSelection: boolean): Field[] => {
  const header = new Uint8Array(20)
  const v = new DataView(header.buffer)
  v.setUint32(0, 1, true)
  v.setUint32(4, type, true)
  v.setUint32(16, size, true)
  return [
    { bytes: header.subarray(0, 4), comment: "msg.protocol = 1 (VD_AGENT_PROTOCOL)" },
    { bytes: header.subarray(4, 8), comment: `msg.type = ${type} (${messageTypeName(type)})` },
    { bytes: header.subarray(8, 16), comment: "msg.opaque = 0" },
    { bytes: header.subarray(16, 20), comment: `msg.size = ${size} payload bytes` },
    ...bodyFields(type, body, withSelection),
  ]
}

const PORT_NAMES: Record<number, string> = { 1: "VDP_CLIENT_PORT", 2: "VDP_SERVER_PORT" }
const LINE = 32

/**
 * Commented hex lines for the chunks of ONE message exactly as they were on the wire. The chunk headers are read from
 * `raw`; the message fields are re-derived from the reassembled body and must reproduce `raw` byte for byte.
 */
export const annotate = (raw: Uint8Array, type: number, body: Uint8Array, withSelection: boolean): string[] => {
  const fields = messageFields(type, body.length, body, withSelection)
  const out: string[] = []
  let at = 0 // in raw
  let fi = 0 // field index
  let fo = 0 // offset inside fields[fi]
  let chunkNo = 0
  while (at < raw.length) {
    const port = u32(raw, at)
    const size = u32(raw, at + 4)
    out.push(`# chunk ${chunkNo++}`)
    out.push(`${hex(raw.subarray(at, at + 4))}  # chunk.port = ${port} (${PORT_NAMES[port] ?? "?"})`)
    out.push(`${hex(raw.subarray(at + 4, at + 8))}  # chunk.size = ${size}`)
    at += CHUNK_HEADER_SIZE
    let left = size
    while (left > 0) {
      const f = fields[fi]!
      const n = Math.min(f.bytes.length - fo, left)
      const piece = f.bytes.subarray(fo, fo + n)
      const comment = fo > 0 ? `(continued: the rest of ${f.comment.split(" = ")[0]})` : `${f.comment}${n < f.bytes.length ? " (continues in the next chunk)" : ""}`
      // Every byte line carries a comment (the format requires it); long fields go 32 bytes a line.
      const field = f.comment.split(" = ")[0]
      for (let l = 0; l < piece.length; l += LINE)
        out.push(`${hex(piece.subarray(l, l + LINE))}  # ${l === 0 ? comment : `${field}, bytes ${fo + l}..${Math.min(fo + l + LINE, fo + n) - 1}`}`)
      fo += n
      left -= n
      if (fo === f.bytes.length) {
        fi++
        fo = 0
      }
    }
    at += size
  }
  // The annotation must be the captured bytes, not a re-encoding that happens to differ.
  const rebuilt = Buffer.from(out.map((l) => l.replace(/#.*$/, "").trim()).join(""), "hex")
  if (!rebuilt.equals(Buffer.from(raw.buffer, raw.byteOffset, raw.length)) || fi !== fields.length)
    throw new Error(`annotation of ${messageTypeName(type)} does not reproduce the captured bytes`)
  return out
}
