// Events per second through the session actor's `step`, for a clipboard-heavy and a mouse-heavy mix (one controller,
// two viewers, an attached bridge). Commands are produced but not executed: this is the actor's own cost.
import type { Emit } from "./run.ts"
import { encodeChunkHeader, encodeMessageHeader } from "../src/protocol/header.ts"
import { MessageType } from "../src/protocol/constants.ts"
import { defaultPolicy, LINK_VERSION } from "../src/link/types.ts"
import { initialState, step, type SessionEvent, type SessionState } from "../src/session/index.ts"

const RUNS = 7
const ms = (): number => Number(process.hrtime.bigint()) / 1e6

const agentMessage = (type: number, payload: Uint8Array): Uint8Array => {
  const out = new Uint8Array(28 + payload.length)
  out.set(encodeChunkHeader({ port: 1, size: 20 + payload.length }), 0)
  out.set(encodeMessageHeader({ type, size: payload.length }), 8)
  out.set(payload, 28)
  return out
}

/** A session with a bridge, an agent that announced its caps, a controller and two viewers, all with ample credit. */
const setup = (): { s: SessionState; t: number; apos: number } => {
  let t = 0
  let s = initialState({ session: "bench", policy: { ...defaultPolicy, viewersSeeClipboard: true }, now: t })
  const ev = (e: SessionEvent): void => void (s = step(s, e).state)
  ev({ _tag: "BridgeAttached", now: ++t, hello: { t: "hello", v: LINK_VERSION, bridge: "b", epoch: 1, chardev: true, from: 0, wrote: 0, port: "open" } })
  const ann = agentMessage(MessageType.AnnounceCapabilities, new Uint8Array([0, 0, 0, 0, 0xe7, 0x8d, 0x03, 0x00]))
  ev({ _tag: "BridgeFrameReceived", now: ++t, frame: { t: "data", epoch: 1, pos: 0, bytes: ann } })
  for (const [id, role] of [["c", "controller"], ["v1", "viewer"], ["v2", "viewer"]] as const) {
    ev({ _tag: "ClientJoined", now: ++t, client: id, maxRole: "controller", hello: { t: "hello", v: LINK_VERSION, client: id, role, caps: [0x3f7] } })
    ev({ _tag: "ClientFrameReceived", now: ++t, client: id, frame: { t: "credit", bytes: 2 ** 31 } })
  }
  return { s, t, apos: ann.length }
}

/** Clipboard-heavy: the agent sends 64 KiB clipboards in 16 KiB frames, the controller sends 8 KiB ones; every client reads. */
const clipboardMix = (n: number): number => {
  let { s, t, apos } = setup()
  const clip = agentMessage(MessageType.Clipboard, new Uint8Array(8 + 64 * 1024).fill(7))
  const mine = new Uint8Array(8 + 8 * 1024).fill(3)
  let id = 1
  let wpos = 0
  const t0 = ms()
  for (let i = 0; i < n; ) {
    for (let o = 0; o < clip.length; o += 16 * 1024, i++) {
      const bytes = clip.subarray(o, Math.min(clip.length, o + 16 * 1024))
      s = step(s, { _tag: "BridgeFrameReceived", now: ++t, frame: { t: "data", epoch: 1, pos: apos, bytes } }).state
      apos += bytes.length
    }
    for (const c of ["c", "v1", "v2"]) s = step(s, { _tag: "ClientFrameReceived", now: ++t, client: c, frame: { t: "credit", bytes: 128 * 1024 } }).state, i++
    const r = step(s, { _tag: "ClientFrameReceived", now: ++t, client: "c", frame: { t: "msg", id: id++, type: MessageType.Clipboard, size: mine.length, data: mine, end: true } })
    s = r.state
    for (const cmd of r.commands) if (cmd._tag === "SendToBridge" && cmd.frame.t === "write") wpos = cmd.frame.pos + cmd.frame.data.length
    s = step(s, { _tag: "BridgeFrameReceived", now: ++t, frame: { t: "wrote", epoch: 1, pos: wpos } }).state
    i += 2
  }
  return ms() - t0
}

/** Mouse-heavy: pointer updates from the controller, the bridge confirming writes after every other one. */
const mouseMix = (n: number): number => {
  let { s, t } = setup()
  let wpos = 0
  const t0 = ms()
  let writes = 0
  for (let i = 0; i < n; i++) {
    const r =
      i % 3 === 2
        ? step(s, { _tag: "BridgeFrameReceived", now: ++t, frame: { t: "wrote", epoch: 1, pos: wpos } })
        : step(s, { _tag: "ClientFrameReceived", now: ++t, client: "c", frame: { t: "mouse", x: i & 1023, y: (i >> 3) & 767, buttons: 0, display: 0 } })
    s = r.state
    for (const cmd of r.commands)
      if (cmd._tag === "SendToBridge" && cmd.frame.t === "write") {
        wpos = cmd.frame.pos + cmd.frame.data.length
        writes++
      }
  }
  // Latest-wins coalescing: with a write confirmed after every two updates, every confirmation releases one MOUSE_STATE.
  if (writes < n / 4) throw new Error(`mouse mix wrote only ${writes} MOUSE_STATE for ${n} events`)
  return ms() - t0
}

const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!

export default async (emit: Emit): Promise<void> => {
  for (const [name, run, n] of [["clipboard", clipboardMix, 20_000], ["mouse", mouseMix, 200_000]] as const) {
    run(n / 10) // warm-up
    const times: number[] = []
    for (let r = 0; r < RUNS; r++) times.push(run(n))
    emit({ name: `session step, ${name}-heavy mix`, value: Math.round(n / (median(times) / 1000)), unit: "events/s" })
  }
}
