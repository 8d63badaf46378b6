// fast-check generators for every decoded vdagent message, canonical for a given layout (so decode ∘ encode = id).
import fc from "fast-check"
import { FileXferResult, MonitorsConfigFlag } from "../../../src/protocol/constants.ts"
import type { AgentMessage, CodecOptions } from "../../../src/protocol/messages.ts"

const u8 = fc.integer({ min: 0, max: 0xff })
const u16 = fc.integer({ min: 0, max: 0xffff })
const u32 = fc.integer({ min: 0, max: 0xffff_ffff })
const i32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff })
const bytes = (maxLength = 64) => fc.uint8Array({ maxLength })
const text = fc.string({ unit: "grapheme", maxLength: 24 }).filter((s) => !s.includes("\0"))

export const layoutArb: fc.Arbitrary<CodecOptions> = fc.record({ selection: fc.boolean(), grabSerial: fc.boolean(), detailedErrors: fc.constant(true) })

export const messageArb = (o: CodecOptions): fc.Arbitrary<AgentMessage> => {
  const selection = o.selection ? u8 : fc.constant(0)
  const monitors = fc.array(fc.record({ height: u32, width: u32, depth: u32, x: i32, y: i32 }), { maxLength: 5 })
  return fc.oneof(
    fc.record({ _tag: fc.constant("MouseState" as const), x: u32, y: u32, buttons: u32, displayId: u8 }),
    fc.tuple(monitors, u32, fc.array(fc.record({ height: u16, width: u16 }), { minLength: 5, maxLength: 5 })).map(([ms, flags, mm]) =>
      (flags & MonitorsConfigFlag.PhysicalSize) !== 0
        ? { _tag: "MonitorsConfig" as const, flags, monitors: ms, physicalSize: mm.slice(0, ms.length) }
        : { _tag: "MonitorsConfig" as const, flags, monitors: ms },
    ),
    fc.record({ _tag: fc.constant("Reply" as const), type: u32, error: u32 }),
    fc.record({ _tag: fc.constant("Clipboard" as const), selection, dataType: u32, data: bytes() }),
    fc.record({ _tag: fc.constant("DisplayConfig" as const), flags: u32, depth: u32 }),
    fc.record({ _tag: fc.constant("AnnounceCapabilities" as const), request: fc.boolean(), caps: fc.array(u32, { maxLength: 4 }) }),
    o.grabSerial
      ? fc.record({ _tag: fc.constant("ClipboardGrab" as const), selection, serial: u32, types: fc.array(u32, { maxLength: 8 }) })
      : fc.record({ _tag: fc.constant("ClipboardGrab" as const), selection, types: fc.array(u32, { maxLength: 8 }) }),
    fc.record({ _tag: fc.constant("ClipboardRequest" as const), selection, dataType: u32 }),
    fc.record({ _tag: fc.constant("ClipboardRelease" as const), selection }),
    fc.record(
      {
        _tag: fc.constant("FileXferStart" as const),
        id: u32,
        // GLib drops a value's leading ASCII whitespace and has no escape for \v or \f (a leading space is "\s",
        // tab, CR and LF always escaped), so such a name cannot cross a key file, the agent's included.
        name: text.filter((s) => !/^[\v\f]/.test(s)),
        size: fc.maxSafeNat(),
        fileXferNr: i32,
        fileXferTotal: i32,
      },
      { requiredKeys: ["_tag", "id", "name", "size"] },
    ),
    fc.oneof(
      fc.record({ _tag: fc.constant("FileXferStatus" as const), id: u32, result: u32 }),
      fc.record({
        _tag: fc.constant("FileXferStatus" as const),
        id: u32,
        result: fc.constant(FileXferResult.Error),
        detail: fc.record({ _tag: fc.constant("Error" as const), errorType: u8, errorCode: u32 }),
      }),
      fc.record({
        _tag: fc.constant("FileXferStatus" as const),
        id: u32,
        result: fc.constant(FileXferResult.NotEnoughSpace),
        detail: fc.record({ _tag: fc.constant("NotEnoughSpace" as const), freeSpace: fc.maxSafeNat() }),
      }),
    ),
    fc.record({ _tag: fc.constant("FileXferData" as const), id: u32, data: bytes() }),
    fc.constant({ _tag: "ClientDisconnected" as const }),
    fc.record({ _tag: fc.constant("MaxClipboard" as const), max: i32 }),
    fc.record({ _tag: fc.constant("AudioVolumeSync" as const), isPlayback: fc.boolean(), mute: fc.boolean(), volume: fc.array(u16, { maxLength: 255 }) }),
    fc.record({
      _tag: fc.constant("GraphicsDeviceInfo" as const),
      devices: fc.array(fc.record({ channelId: u32, monitorId: u32, deviceDisplayId: u32, deviceAddress: text }), { maxLength: 4 }),
    }),
  )
}

/** A message as it sits in a stream: port, wire type, raw payload. */
export interface RawMessage {
  readonly port: number
  readonly type: number
  readonly payload: Uint8Array
}

export const rawMessageArb: fc.Arbitrary<RawMessage> = fc.record({
  port: fc.constantFrom(1, 2),
  type: fc.integer({ min: 1, max: 16 }),
  payload: fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 80 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 2000, maxLength: 6000 }) }),
})
