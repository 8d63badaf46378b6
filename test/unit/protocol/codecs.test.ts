// Unit tests of every payload codec against hand-written bytes, and the size rules of spice-common agent_check_message.
import { describe, expect, it } from "vitest"
import {
  ClipboardType,
  FileXferResult,
  MAX_MONITORS,
  MessageType,
  decodeMessage,
  encodeMessage,
  type AgentMessage,
  type CodecOptions,
} from "../../../src/protocol/index.ts"

const hex = (s: string): Uint8Array => Uint8Array.from((s.replace(/\s+/g, "").match(/../g) ?? []).map((b) => parseInt(b, 16)))
const SEL_SER: CodecOptions = { selection: true, grabSerial: true, detailedErrors: true }
const PLAIN: CodecOptions = { selection: false, grabSerial: false }

const ok = (type: number, payload: string, o: CodecOptions = SEL_SER): AgentMessage => {
  const r = decodeMessage(type, hex(payload), o)
  if (r._tag !== "Ok") throw new Error(`expected Ok, got ${r.reason}: ${r.detail}`)
  return r.value
}
const reason = (type: number, payload: string, o: CodecOptions = SEL_SER): string => {
  const r = decodeMessage(type, hex(payload), o)
  return r._tag === "Ok" ? "Ok" : r.reason
}
const encoded = (m: AgentMessage, o: CodecOptions = SEL_SER): string => {
  const r = encodeMessage(m, o)
  if (r._tag !== "Ok") throw new Error(`expected Ok, got ${r.reason}: ${r.detail}`)
  return Buffer.from(r.value).toString("hex")
}

describe("MOUSE_STATE", () => {
  it("decodes 13 bytes and nothing else", () => {
    expect(ok(1, "64000000 c8000000 02000000 01")).toEqual({ _tag: "MouseState", x: 100, y: 200, buttons: 2, displayId: 1 })
    expect(reason(1, "64000000 c8000000 02000000")).toBe("BadSize")
    expect(reason(1, "64000000 c8000000 02000000 0100")).toBe("BadSize")
  })
  it("refuses out-of-range fields instead of wrapping them", () => {
    const r = encodeMessage({ _tag: "MouseState", x: -1, y: 0, buttons: 0, displayId: 256 }, PLAIN)
    expect(r).toMatchObject({ _tag: "Invalid", reason: "BadField" })
  })
})

describe("MONITORS_CONFIG", () => {
  const one = "01000000 00000000 00030000 00040000 20000000 00000000 00000000"
  it("reads height before width", () => {
    expect(ok(2, one)).toEqual({ _tag: "MonitorsConfig", flags: 0, monitors: [{ height: 768, width: 1024, depth: 32, x: 0, y: 0 }] })
  })
  it("reads the physical-size array (u16 height, u16 width) when flags has PHYSICAL_SIZE", () => {
    const m = ok(2, "01000000 03000000 00030000 00040000 20000000 f6ffffff 0a000000 2c01 1e02")
    expect(m).toEqual({
      _tag: "MonitorsConfig",
      flags: 3,
      monitors: [{ height: 768, width: 1024, depth: 32, x: -10, y: 10 }],
      physicalSize: [{ height: 300, width: 542 }],
    })
    expect(encoded(m)).toBe(hex("01000000 03000000 00030000 00040000 20000000 f6ffffff 0a000000 2c01 1e02").reduce((s, b) => s + b.toString(16).padStart(2, "0"), ""))
  })
  it("refuses a count that does not fit (the physical-size entries count too)", () => {
    expect(reason(2, "02000000 00000000 00030000 00040000 20000000 00000000 00000000")).toBe("Truncated")
    expect(reason(2, "01000000 02000000 00030000 00040000 20000000 00000000 00000000")).toBe("Truncated")
    expect(reason(2, "0100000000")).toBe("BadSize")
    expect(reason(2, "ffffffff 00000000")).toBe("Truncated")
  })
  it("accepts trailing bytes like spice-common", () => {
    expect(ok(2, "00000000 01000000 deadbeef")).toEqual({ _tag: "MonitorsConfig", flags: 1, monitors: [] })
  })
  it("enforces maxMonitors on client input", () => {
    const n = MAX_MONITORS + 1
    const payload = new Uint8Array(8 + 20 * n)
    new DataView(payload.buffer).setUint32(0, n, true)
    expect(decodeMessage(2, payload, { ...PLAIN, maxMonitors: MAX_MONITORS })).toMatchObject({ reason: "TooManyMonitors" })
    expect(decodeMessage(2, payload, PLAIN)._tag).toBe("Ok")
  })
  it("refuses to encode physical sizes that disagree with the flags", () => {
    expect(encodeMessage({ _tag: "MonitorsConfig", flags: 2, monitors: [] }, PLAIN)).toMatchObject({ reason: "BadField" })
  })
})

describe("clipboard layouts follow the peer's caps", () => {
  it("CLIPBOARD with and without the selection prefix", () => {
    expect(ok(4, "01000000 01000000 686921")).toEqual({ _tag: "Clipboard", selection: 1, dataType: 1, data: hex("686921") })
    expect(ok(4, "01000000 686921", PLAIN)).toEqual({ _tag: "Clipboard", selection: 0, dataType: 1, data: hex("686921") })
    expect(reason(4, "01000000")).toBe("BadSize")
    expect(reason(4, "010000", PLAIN)).toBe("BadSize")
  })
  it("CLIPBOARD data is a view, not a copy", () => {
    const p = hex("00000000 01000000 6869")
    const m = decodeMessage(4, p, SEL_SER)
    expect(m._tag === "Ok" && m.value._tag === "Clipboard" && m.value.data.buffer).toBe(p.buffer)
  })
  it("CLIPBOARD_GRAB: +SEL +SER, then types", () => {
    expect(ok(7, "00000000 00000000 01000000")).toEqual({ _tag: "ClipboardGrab", selection: 0, serial: 0, types: [ClipboardType.Utf8Text] })
    expect(ok(7, "01000000 02000000", { selection: true, grabSerial: false })).toEqual({ _tag: "ClipboardGrab", selection: 1, types: [2] })
    expect(ok(7, "07000000", { selection: false, grabSerial: true })).toEqual({ _tag: "ClipboardGrab", selection: 0, serial: 7, types: [] })
    expect(ok(7, "", PLAIN)).toEqual({ _tag: "ClipboardGrab", selection: 0, types: [] })
    expect(reason(7, "00000000 000000")).toBe("BadSize")
  })
  it("CLIPBOARD_REQUEST is exactly 4 (+4)", () => {
    expect(ok(8, "02000000 05000000")).toEqual({ _tag: "ClipboardRequest", selection: 2, dataType: 5 })
    expect(reason(8, "05000000")).toBe("BadSize")
    expect(ok(8, "05000000", PLAIN)).toEqual({ _tag: "ClipboardRequest", selection: 0, dataType: 5 })
  })
  it("CLIPBOARD_RELEASE is exactly 0 (+4), and the agent's 1-byte body is accepted whatever the caps", () => {
    expect(ok(9, "01000000")).toEqual({ _tag: "ClipboardRelease", selection: 1 })
    expect(ok(9, "", PLAIN)).toEqual({ _tag: "ClipboardRelease", selection: 0 })
    expect(ok(9, "01", PLAIN)).toEqual({ _tag: "ClipboardRelease", selection: 1 })
    expect(ok(9, "00")).toEqual({ _tag: "ClipboardRelease", selection: 0 })
    expect(reason(9, "")).toBe("BadSize")
    expect(reason(9, "0000", PLAIN)).toBe("BadSize")
  })
  it("a non-CLIPBOARD selection cannot be sent to a peer without CLIPBOARD_SELECTION; a serial is dropped", () => {
    expect(encodeMessage({ _tag: "ClipboardRelease", selection: 1 }, PLAIN)).toMatchObject({ reason: "Unrepresentable" })
    expect(encoded({ _tag: "ClipboardGrab", selection: 0, serial: 9, types: [1] }, PLAIN)).toBe("01000000")
    expect(encodeMessage({ _tag: "ClipboardGrab", selection: 0, types: [1] }, SEL_SER)).toMatchObject({ reason: "Unrepresentable" })
  })
})

describe("fixed-size messages", () => {
  it("REPLY, DISPLAY_CONFIG, MAX_CLIPBOARD, CLIENT_DISCONNECTED", () => {
    expect(ok(3, "02000000 01000000")).toEqual({ _tag: "Reply", type: MessageType.MonitorsConfig, error: 1 })
    expect(reason(3, "02000000 01000000 00")).toBe("BadSize")
    expect(ok(5, "0f000000 20000000")).toEqual({ _tag: "DisplayConfig", flags: 15, depth: 32 })
    expect(reason(5, "0f000000")).toBe("BadSize")
    expect(ok(14, "ffffffff")).toEqual({ _tag: "MaxClipboard", max: -1 })
    expect(ok(14, "00000064")).toEqual({ _tag: "MaxClipboard", max: 0x64000000 })
    expect(reason(14, "ffff")).toBe("BadSize")
    expect(ok(13, "")).toEqual({ _tag: "ClientDisconnected" })
    expect(reason(13, "00")).toBe("BadSize")
  })
})

describe("ANNOUNCE_CAPABILITIES", () => {
  it("request flag then caps words; a ragged tail is ignored", () => {
    expect(ok(6, "01000000 e78d0300")).toEqual({ _tag: "AnnounceCapabilities", request: true, caps: [0x00038de7] })
    expect(ok(6, "00000000")).toEqual({ _tag: "AnnounceCapabilities", request: false, caps: [] })
    expect(ok(6, "00000000 01000000 02")).toEqual({ _tag: "AnnounceCapabilities", request: false, caps: [1] })
    expect(reason(6, "000000")).toBe("BadSize")
  })
})

describe("AUDIO_VOLUME_SYNC", () => {
  it("nchannels u16 volumes, which must fit", () => {
    expect(ok(15, "01 00 02 3412 ffff")).toEqual({ _tag: "AudioVolumeSync", isPlayback: true, mute: false, volume: [0x1234, 0xffff] })
    expect(reason(15, "01 00 03 3412 ffff")).toBe("Truncated")
    expect(reason(15, "0100")).toBe("BadSize")
    expect(encodeMessage({ _tag: "AudioVolumeSync", isPlayback: true, mute: true, volume: new Array(256).fill(0) }, PLAIN)).toMatchObject({ reason: "BadField" })
  })
})

describe("GRAPHICS_DEVICE_INFO", () => {
  const entry = "00000000 01000000 02000000 0e000000" + Buffer.from("pci/0000/02.0\0").toString("hex")
  it("decodes entries with NUL-terminated addresses", () => {
    expect(ok(16, "01000000" + entry)).toEqual({
      _tag: "GraphicsDeviceInfo",
      devices: [{ channelId: 0, monitorId: 1, deviceDisplayId: 2, deviceAddress: "pci/0000/02.0" }],
    })
    expect(encoded(ok(16, "01000000" + entry))).toBe(("01000000" + entry).replace(/ /g, ""))
  })
  it("refuses len 0, entries that do not fit, and huge counts without looping on them", () => {
    expect(reason(16, "01000000 00000000 01000000 02000000 00000000")).toBe("BadField")
    expect(reason(16, "02000000" + entry)).toBe("Truncated")
    expect(reason(16, "01000000 00000000 01000000 02000000 ff000000 00")).toBe("Truncated")
    expect(reason(16, "ffffffff")).toBe("Truncated")
    expect(reason(16, "000000")).toBe("BadSize")
  })
})

describe("FILE_XFER_START", () => {
  const start = (text: string) => "01000000" + Buffer.from(text + "\0").toString("hex")
  it("parses the key file: name, size, optional nr/total", () => {
    expect(ok(10, start("[vdagent-file-xfer]\nname=a b.txt\nsize=42\n"))).toEqual({ _tag: "FileXferStart", id: 1, name: "a b.txt", size: 42 })
    expect(ok(10, start("# c\n[other]\nname=x\n\n[vdagent-file-xfer]\nname = \\sx\\ty\\\\\nsize=7\nfile-xfer-nr=2\nfile-xfer-total=3\n"))).toEqual({
      _tag: "FileXferStart",
      id: 1,
      name: " x\ty\\",
      size: 7,
      fileXferNr: 2,
      fileXferTotal: 3,
    })
  })
  it("emits the text GLib would, with its NUL", () => {
    expect(Buffer.from(hex(encoded({ _tag: "FileXferStart", id: 5, name: " a\nb", size: 3 }))).toString("latin1")).toBe(
      "\x05\0\0\0[vdagent-file-xfer]\nname=\\sa\\nb\nsize=3\n\0",
    )
  })
  it("refuses a missing NUL, missing keys, bad numbers and bad escapes", () => {
    expect(reason(10, "01000000" + Buffer.from("[vdagent-file-xfer]\nname=a\nsize=1\n").toString("hex"))).toBe("BadField")
    expect(reason(10, start("[vdagent-file-xfer]\nname=a\n"))).toBe("BadField")
    expect(reason(10, start("[vdagent-file-xfer]\nname=a\nsize=-1\n"))).toBe("BadField")
    expect(reason(10, start("[vdagent-file-xfer]\nname=a\nsize=99999999999999999999\n"))).toBe("BadField")
    expect(reason(10, start("[vdagent-file-xfer]\nname=a\\q\nsize=1\n"))).toBe("BadField")
    expect(reason(10, "01000000" + "ff00")).toBe("BadField")
    expect(reason(10, "010000")).toBe("BadSize")
  })
})

describe("FILE_XFER_STATUS", () => {
  it("reads the detail of ERROR (u8 type + u32 code) and NOT_ENOUGH_SPACE (u64)", () => {
    expect(ok(11, "07000000 02000000 00 18000000")).toEqual({
      _tag: "FileXferStatus",
      id: 7,
      result: FileXferResult.Error,
      detail: { _tag: "Error", errorType: 0, errorCode: 24 },
    })
    expect(ok(11, "07000000 04000000 0000000001000000")).toEqual({
      _tag: "FileXferStatus",
      id: 7,
      result: FileXferResult.NotEnoughSpace,
      detail: { _tag: "NotEnoughSpace", freeSpace: 2 ** 32 },
    })
    expect(ok(11, "07000000 03000000")).toEqual({ _tag: "FileXferStatus", id: 7, result: FileXferResult.Success })
    expect(ok(11, "07000000 02000000 00")).toEqual({ _tag: "FileXferStatus", id: 7, result: FileXferResult.Error })
    expect(reason(11, "07000000 04000000 00000000ffffffff")).toBe("UnsafeInteger")
    expect(reason(11, "07000000 040000")).toBe("BadSize")
  })
  it("folds results ≥ 4 into ERROR and drops details when the peer lacks FILE_XFER_DETAILED_ERRORS", () => {
    const nes: AgentMessage = { _tag: "FileXferStatus", id: 7, result: 4, detail: { _tag: "NotEnoughSpace", freeSpace: 10 } }
    expect(encoded(nes, PLAIN)).toBe("0700000002000000")
    expect(encoded({ _tag: "FileXferStatus", id: 7, result: 7 }, PLAIN)).toBe("0700000002000000")
    expect(encoded({ _tag: "FileXferStatus", id: 7, result: 2, detail: { _tag: "Error", errorType: 0, errorCode: 1 } }, PLAIN)).toBe("0700000002000000")
    expect(encoded({ _tag: "FileXferStatus", id: 7, result: 1 }, PLAIN)).toBe("0700000001000000")
    expect(encoded(nes)).toBe("07000000040000000a00000000000000")
    expect(encodeMessage({ _tag: "FileXferStatus", id: 7, result: 3, detail: { _tag: "NotEnoughSpace", freeSpace: 1 } }, SEL_SER)).toMatchObject({
      reason: "BadField",
    })
  })
})

describe("FILE_XFER_DATA", () => {
  it("u32 id, u64 size, then exactly size bytes as a view", () => {
    const p = hex("09000000 0300000000000000 616263")
    const m = decodeMessage(12, p, PLAIN)
    expect(m).toEqual({ _tag: "Ok", value: { _tag: "FileXferData", id: 9, data: hex("616263") } })
    expect(m._tag === "Ok" && m.value._tag === "FileXferData" && m.value.data.buffer).toBe(p.buffer)
    expect(reason(12, "09000000 0400000000000000 616263")).toBe("BadSize")
    expect(reason(12, "09000000 0300000001000000 616263")).toBe("BadSize")
    expect(reason(12, "09000000 03000000000000")).toBe("BadSize")
  })
})

it("unknown types are UnknownType, for decode and size checks alike", () => {
  expect(reason(0, "")).toBe("UnknownType")
  expect(reason(17, "")).toBe("UnknownType")
  expect(reason(0xffffffff, "")).toBe("UnknownType")
})
