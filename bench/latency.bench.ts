// Latency the relay adds (figure 4) and mouse latency under a bulk transfer (figure 5), measured where the bytes reach
// the chardev socket: SDK → Worker → VmSession DO → bridge → probe agent, against the same message written straight to
// an identical probe's socket. Samples alternate between the two paths so the shared machine's load hits both alike.
import { type Socket, connect } from "node:net"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Session } from "../src/client/index.ts"
import type { AgentMessage } from "../src/protocol/messages.ts"
import { encodeChunkedMessage } from "../src/protocol/chunker.ts"
import { ClipboardType, MessageType, Port } from "../src/protocol/constants.ts"
import type { Emit, Want } from "./run.ts"
import { type Arrival, ProbeAgent, u32At } from "./lib/probe-agent.ts"
import { startProbeRig } from "./lib/stack.ts"
import { longRuns, now, round, sleep, summarize, type Summary } from "./lib/stats.ts"

const MiB = 1024 * 1024
/** 10 MiB transfers the loaded mouse samples are taken under (each gives a few dozen samples). */
const TRANSFERS = 6
const RUNTIME = "raw Miniflare/workerd (test/harness/worker.ts) + vdrelay bridge process + SDK on Node 22 with ws"

const mouseBody = (seq: number): Uint8Array => {
  const b = new Uint8Array(13)
  const v = new DataView(b.buffer)
  v.setUint32(0, seq, true)
  v.setUint32(4, 1, true)
  return b
}

/** A 1 KiB CLIPBOARD payload (selection 0, UTF8_TEXT) whose text starts with the sequence number. */
const clipboardBody = (seq: number): Uint8Array => {
  const b = new Uint8Array(1024).fill(0x61)
  const v = new DataView(b.buffer)
  v.setUint32(0, 0, true)
  v.setUint32(4, ClipboardType.Utf8Text, true)
  v.setUint32(8, seq, true)
  return b
}

/** The SDK's typed form of a CLIPBOARD payload built above (the SDK lays it out for the agent's caps again). */
const asClipboard = (payload: Uint8Array): AgentMessage => ({ _tag: "Clipboard", selection: 0, dataType: ClipboardType.Utf8Text, data: payload.subarray(8) })

type Kind = "mouse" | "clipboard"
const isKind = (kind: Kind, seq: number) => (a: Arrival): boolean =>
  kind === "mouse" ? a.type === MessageType.MouseState && u32At(a.head, 0) === seq : a.type === MessageType.Clipboard && u32At(a.head, 8) === seq

const writeDirect = (socket: Socket, bytes: Uint8Array): void => void socket.write(bytes)

/** One sample: time from the send call to the probe reading the message's last byte. */
const sample = async (probe: ProbeAgent, kind: Kind, seq: number, send: () => void): Promise<number> => {
  const arrived = probe.next(isKind(kind, seq), 10_000)
  const t = now()
  send()
  return (await arrived).at - t
}

const sendRelay = (s: Session, kind: Kind, seq: number): (() => void) =>
  kind === "mouse" ? () => s.sendMouse({ x: seq, y: 1 }) : () => void s.sendMessage(asClipboard(clipboardBody(seq)))

const sendDirect = (socket: Socket, kind: Kind, seq: number): (() => void) => {
  const bytes = kind === "mouse" ? encodeChunkedMessage(Port.Server, MessageType.MouseState, mouseBody(seq)) : encodeChunkedMessage(Port.Client, MessageType.Clipboard, clipboardBody(seq))
  return () => writeDirect(socket, bytes)
}

const emitLatency = (emit: Emit, label: string, relay: Summary, direct: Summary): void => {
  for (const q of ["p50", "p99"] as const) {
    emit({ name: `${label}: ${q} added by the relay (relay ${round(relay[q])} ms, direct ${round(direct[q])} ms; ${RUNTIME})`, value: round(relay[q] - direct[q]), unit: "ms", baseline: round(direct[q]), ratio: round(relay[q] / direct[q], 2) })
  }
}

export default async (emit: Emit, want: Want): Promise<void> => {
  const n = longRuns() ? 5000 : 1000
  const rig = await startProbeRig(1, { prefix: "lat" })
  const dir = mkdtempSync(join(tmpdir(), "vdr-bench-direct-"))
  const direct = await ProbeAgent.listen(join(dir, "direct.sock"), { announce: false })
  const socket = connect(direct.path).setNoDelay(true)
  try {
    await direct.waitForHost()
    const [probe, s] = [rig.probes[0]!, rig.sessions[0]!]
    probe.record = direct.record = false
    let seq = 1
    const unloaded: Record<Kind, number[]> = { mouse: [], clipboard: [] }
    for (const kind of ["mouse", "clipboard"] as const) {
      if (!want("unloaded") && !(kind === "mouse" && want("loaded"))) continue
      const relay: number[] = []
      const plain: number[] = []
      const warm = 200
      for (let i = 0; i < n + warm; i++) {
        const r = await sample(probe, kind, seq, sendRelay(s, kind, seq++))
        const d = await sample(direct, kind, seq, sendDirect(socket, kind, seq++))
        if (i >= warm) relay.push(r), plain.push(d)
      }
      unloaded[kind] = relay
      const label = kind === "mouse" ? "mouse 13 B (MOUSE_STATE), client → chardev" : "clipboard 1 KiB (CLIPBOARD), client → chardev"
      if (want("unloaded")) emitLatency(emit, label, summarize(relay), summarize(plain))
    }
    if (want("loaded")) await underLoad(emit, probe, s, direct, socket, unloaded.mouse, () => seq++)
  } finally {
    socket.destroy()
    await direct.close()
    rmSync(dir, { recursive: true, force: true })
    await rig.stop()
  }
}

/**
 * Figure 5: mouse samples every ~2 ms while 10 MiB CLIPBOARD messages cross the same client link and chardev. The
 * baseline is a plain byte pipe (what a relay without port interleaving gives): the mouse written right after the
 * 10 MiB message waits behind all of it.
 */
const underLoad = async (emit: Emit, probe: ProbeAgent, s: Session, direct: ProbeAgent, socket: Socket, unloaded: number[], next: () => number): Promise<void> => {
  const big = new Uint8Array(10 * MiB).fill(0x62)
  new DataView(big.buffer).setUint32(4, ClipboardType.Utf8Text, true)
  const loaded: number[] = []
  const transfers: number[] = []
  for (let r = 0; r < TRANSFERS; r++) {
    const t0 = now()
    const done = probe.next((a) => a.type === MessageType.Clipboard && a.size === big.length, 60_000)
    let finished = false
    void done.then(() => (finished = true))
    void s.sendMessage(asClipboard(big))
    while (!finished) {
      const seq = next()
      loaded.push(await sample(probe, "mouse", seq, sendRelay(s, "mouse", seq)))
      await sleep(1)
    }
    transfers.push((await done).at - t0)
  }
  const naive: number[] = []
  const bigWire = encodeChunkedMessage(Port.Client, MessageType.Clipboard, big)
  for (let r = 0; r < 3; r++) {
    const seq = next()
    naive.push(await sample(direct, "mouse", seq, () => (writeDirect(socket, bigWire), sendDirect(socket, "mouse", seq)())))
  }
  const l = summarize(loaded)
  const u = summarize(unloaded)
  const b = summarize(naive)
  const ctx = `${l.n} samples over ${TRANSFERS} × 10 MiB in ${round(summarize(transfers).p50, 0)} ms each; ${RUNTIME}`
  emit({ name: `mouse under a 10 MiB clipboard transfer: p50 (unloaded ${round(u.p50)} ms; ${ctx})`, value: round(l.p50), unit: "ms", baseline: round(b.p50), ratio: round(b.p50 / l.p50, 1) })
  emit({ name: `mouse under a 10 MiB clipboard transfer: p99 (unloaded ${round(u.p99)} ms; baseline: mouse behind the message on a plain byte pipe)`, value: round(l.p99), unit: "ms", baseline: round(b.p99), ratio: round(b.p99 / l.p99, 1) })
}
