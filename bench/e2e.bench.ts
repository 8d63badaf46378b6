// Figure 2: a 10 MiB text clipboard both ways through the whole relay (SDK → Worker → VmSession DO → bridge → real
// spice-vdagent 0.22.1 under Xvfb) against the same transfer over a direct socket to a second, identical real agent.
// Both sides include the X selection transfer (xclip) at the guest end; results are checked byte for byte.
import { randomBytes } from "node:crypto"
import type { Session } from "../src/client/index.ts"
import { defaultClientCaps } from "../src/client/session.ts"
import { Cap, ClipboardType, MessageType as T } from "../src/protocol/constants.ts"
import { hasCap } from "../src/protocol/caps.ts"
import { payload, u32At } from "../test/harness/host-peer.ts"
import { type RealAgent, startRealAgent } from "../test/harness/real-agent.ts"
import type { Emit } from "./run.ts"
import { DirectPeer } from "./lib/direct-peer.ts"
import { agentReady, openClient, startBenchWorker, startBridge } from "./lib/stack.ts"
import { WARMUP, alternate, longRuns, median, mibps, now, round } from "./lib/stats.ts"

const MiB = 1024 * 1024
const RUNTIME = "raw Miniflare/workerd (test/harness/worker.ts), vdrelay bridge process, SDK on Node 22 with ws"

/** 10 MiB of printable ASCII in 80-column lines: what a large text paste looks like. */
const makeText = (bytes: number): string => {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_"
  const r = randomBytes(bytes)
  let s = ""
  const parts: string[] = []
  for (let i = 0; i < bytes; i++) {
    s += (i + 1) % 81 === 0 ? "\n" : alphabet[r[i]! % alphabet.length]
    if (s.length === 65536) parts.push(s), (s = "")
  }
  return parts.join("") + s
}

/** The direct baseline speaks what the SDK speaks: same caps, same MAX_CLIPBOARD, same serial rule. */
class DirectClient {
  private serial = 0
  private constructor(readonly peer: DirectPeer) {}

  static async open(agent: RealAgent): Promise<DirectClient> {
    const peer = await DirectPeer.connect(agent.hostSocketPath)
    const reply = peer.next((m) => m.type === T.AnnounceCapabilities && u32At(m.body, 0) === 0)
    await peer.send(T.AnnounceCapabilities, payload.announce(1, defaultClientCaps[0]!))
    const agentCaps = u32At((await reply).body, 4)
    if (hasCap([agentCaps], Cap.MaxClipboard)) await peer.send(T.MaxClipboard, new Uint8Array(new Uint32Array([100 * MiB]).buffer))
    return new DirectClient(peer)
  }

  async toGuest(agent: RealAgent, text: Uint8Array): Promise<number> {
    const mark = agent.logs.session.mark()
    await this.peer.send(T.ClipboardGrab, payload.grab(0, this.serial++, [ClipboardType.Utf8Text]))
    await agent.logs.session.waitFor(/received clipboard grab/, { from: mark })
    const t0 = now()
    const request = this.peer.next((m) => m.type === T.ClipboardRequest)
    const read = agent.getClipboard({ timeoutMs: 60_000 })
    await request
    await this.peer.send(T.Clipboard, payload.clipboard(0, ClipboardType.Utf8Text, text))
    const out = await read
    const ms = now() - t0
    if (!out.equals(text)) throw new Error(`direct client→guest: xclip read ${out.length} bytes, not the ${text.length} sent`)
    return ms
  }

  async fromGuest(agent: RealAgent, text: string): Promise<number> {
    const grab = this.peer.next((m) => m.type === T.ClipboardGrab)
    await agent.setClipboard(text)
    // One serial per selection, shared by both directions: an accepted grab advances ours too (spec §2).
    this.serial = u32At((await grab).body, 4) + 1
    const t0 = now()
    const data = this.peer.next((m) => m.type === T.Clipboard)
    await this.peer.send(T.ClipboardRequest, payload.request(0, ClipboardType.Utf8Text))
    const got = new TextDecoder().decode((await data).body.subarray(8))
    const ms = now() - t0
    if (got !== text) throw new Error(`direct guest→client: got ${got.length} chars, not the ${text.length} set`)
    return ms
  }
}

const relayToGuest = async (s: Session, agent: RealAgent, text: string, bytes: Uint8Array): Promise<number> => {
  const mark = agent.logs.session.mark()
  await s.setClipboardText(text)
  await agent.logs.session.waitFor(/received clipboard grab/, { from: mark })
  const t0 = now()
  const out = await agent.getClipboard({ timeoutMs: 60_000 })
  const ms = now() - t0
  if (!out.equals(bytes)) throw new Error(`relay client→guest: xclip read ${out.length} bytes, not the ${bytes.length} sent`)
  return ms
}

const relayFromGuest = async (s: Session, agent: RealAgent, text: string): Promise<number> => {
  const grab = s.next("clipboard-grab")
  await agent.setClipboard(text)
  await grab
  const t0 = now()
  const got = await s.requestClipboardText()
  const ms = now() - t0
  if (got !== text) throw new Error(`relay guest→client: got ${got.length} chars, not the ${text.length} set`)
  return ms
}

export default async (emit: Emit): Promise<void> => {
  const runs = longRuns() ? 9 : 5
  const [relayAgent, directAgent] = await Promise.all([startRealAgent(), startRealAgent()])
  const worker = await startBenchWorker()
  const bridge = await startBridge(worker, [{ id: "e2e", chardev: relayAgent.hostSocketPath }])
  let session: Session | undefined
  let direct: DirectClient | undefined
  try {
    session = await openClient(worker, "e2e")
    await agentReady(session)
    direct = await DirectClient.open(directAgent)
    const text = makeText(10 * MiB)
    const bytes = new TextEncoder().encode(text)
    const s = session
    const d = direct
    const fromGuest = await alternate(() => relayFromGuest(s, relayAgent, text), () => d.fromGuest(directAgent, text), runs)
    const toGuest = await alternate(() => relayToGuest(s, relayAgent, text, bytes), () => d.toGuest(directAgent, bytes), runs)
    for (const [dir, t] of [["client → guest", toGuest], ["guest → client", fromGuest]] as const) {
      const ours = median(t.ours)
      const base = median(t.baseline)
      emit({
        name: `10 MiB text clipboard ${dir}, real agent, byte-exact (relay ${round(ours, 0)} ms vs direct socket ${round(base, 0)} ms, median of ${runs} after ${WARMUP} warm-up runs each; first transfer after start ${round(t.cold.ours, 0)} vs ${round(t.cold.baseline, 0)} ms; ${RUNTIME})`,
        value: round(mibps(bytes.length, ours), 1),
        unit: "MiB/s",
        baseline: round(mibps(bytes.length, base), 1),
        ratio: round(base / ours, 3),
      })
    }
  } finally {
    await session?.close().catch(() => {})
    await direct?.peer.close()
    await bridge.stop()
    await worker.stop()
    await Promise.all([relayAgent.stop(), directAgent.stop()])
  }
}
