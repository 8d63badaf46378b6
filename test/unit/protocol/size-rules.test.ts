// checkMessageSize: spice-common's receiver rules from the header alone, and the per-type client limits.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { CLIENT_MESSAGE_LIMITS, MessageType as T, checkMessageSize, decodeMessage } from "../../../src/protocol/index.ts"

const SEL_SER = { selection: true, grabSerial: true }
const PLAIN = { selection: false, grabSerial: false }
const verdict = (type: number, size: number, o: Parameters<typeof checkMessageSize>[2] = SEL_SER) => checkMessageSize(type, size, o)?.reason ?? "Ok"

describe("checkMessageSize", () => {
  it("exact sizes", () => {
    for (const [type, size] of [[T.MouseState, 13], [T.Reply, 8], [T.DisplayConfig, 8], [T.MaxClipboard, 4], [T.ClientDisconnected, 0]] as const) {
      expect(verdict(type, size)).toBe("Ok")
      expect(verdict(type, size + 1)).toBe("BadSize")
      if (size > 0) expect(verdict(type, size - 1)).toBe("BadSize")
    }
  })
  it("minimum sizes", () => {
    for (const [type, min] of [[T.MonitorsConfig, 8], [T.AnnounceCapabilities, 4], [T.FileXferStart, 4], [T.FileXferStatus, 8], [T.FileXferData, 12], [T.AudioVolumeSync, 3], [T.GraphicsDeviceInfo, 4]] as const) {
      expect(verdict(type, min)).toBe("Ok")
      expect(verdict(type, min + 1000)).toBe("Ok")
      expect(verdict(type, min - 1)).toBe("BadSize")
    }
  })
  it("clipboard sizes grow with +SEL and +SER", () => {
    expect(verdict(T.Clipboard, 4, PLAIN)).toBe("Ok")
    expect(verdict(T.Clipboard, 7, SEL_SER)).toBe("BadSize")
    expect(verdict(T.ClipboardGrab, 0, PLAIN)).toBe("Ok")
    expect(verdict(T.ClipboardGrab, 4, { selection: true, grabSerial: false })).toBe("Ok")
    expect(verdict(T.ClipboardGrab, 7, SEL_SER)).toBe("BadSize")
    expect(verdict(T.ClipboardRequest, 8, SEL_SER)).toBe("Ok")
    expect(verdict(T.ClipboardRequest, 4, SEL_SER)).toBe("BadSize")
    expect(verdict(T.ClipboardRelease, 4, SEL_SER)).toBe("Ok")
    expect(verdict(T.ClipboardRelease, 0, SEL_SER)).toBe("BadSize")
    expect(verdict(T.ClipboardRelease, 1, SEL_SER)).toBe("Ok") // spice-vdagentd's 1-byte release
    expect(verdict(T.ClipboardRelease, 1, PLAIN)).toBe("Ok")
  })
  it("unknown types", () => {
    expect(verdict(0, 0)).toBe("UnknownType")
    expect(verdict(17, 0)).toBe("UnknownType")
  })
  it("client limits refuse a too-big header before any body", () => {
    const o = { ...SEL_SER, limits: CLIENT_MESSAGE_LIMITS }
    expect(verdict(T.MonitorsConfig, 8 + 16 * 24, o)).toBe("Ok")
    expect(verdict(T.MonitorsConfig, 8 + 16 * 24 + 1, o)).toBe("MessageTooLarge")
    expect(verdict(T.FileXferData, 12 + 65536, o)).toBe("Ok")
    expect(verdict(T.FileXferData, 12 + 65537, o)).toBe("MessageTooLarge")
    expect(verdict(T.Clipboard, 0xffffffff, o)).toBe("MessageTooLarge")
    expect(verdict(T.MonitorsConfig, 0xffffffff, SEL_SER)).toBe("Ok")
  })
  it("agrees with the decoders: a payload the decoder accepts passes the header check", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.boolean(), (type, payload, selection, grabSerial) => {
        const o = { selection, grabSerial }
        if (decodeMessage(type, payload, o)._tag === "Ok") expect(checkMessageSize(type, payload.length, o)).toBeUndefined()
      }),
      { numRuns: 5000 },
    )
  })
})
