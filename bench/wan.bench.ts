// Figure 3: a 32 MiB file to the guest over a client link with 50 ms added round trip (a loopback TCP proxy delaying
// each direction by 25 ms), through the SDK and the whole relay to the real agent, against two baselines over the same
// kind of proxy to a second real agent: an emulation of SPICE's agent flow control (10 tokens × 2 KiB, one token back
// per consumed chunk), and the real agent's own speed over that link — a host client speaking the agent protocol on
// the chardev socket itself, through the proxy, with no window but TCP's (issue 16 target 7: the relay ≥ 0.9× it).
// Files are checked byte for byte in the agents' transfer folders.
import { randomBytes } from "node:crypto"
import { readFile, rm } from "node:fs/promises"
import { join } from "node:path"
import WebSocket from "ws"
import type { Session, WebSocketConstructor } from "../src/client/index.ts"
import { defaultClientCaps } from "../src/client/session.ts"
import { FILE_XFER_DATA_BLOCK, FileXferResult, MessageType } from "../src/protocol/constants.ts"
import { payload } from "../test/harness/host-peer.ts"
import { startRealAgent } from "../test/harness/real-agent.ts"
import type { Emit } from "./run.ts"
import { DirectPeer } from "./lib/direct-peer.ts"
import { startDelayProxy } from "./lib/delay-proxy.ts"
import { SPICE_WINDOW, SpiceClientEmu, spiceHandshake, spiceSendFile, startSpiceServerEmu } from "./lib/spice-emu.ts"
import { agentReady, openClient, startBenchWorker, startBridge } from "./lib/stack.ts"
import { longRuns, median, mibps, now, round } from "./lib/stats.ts"

const MiB = 1024 * 1024
const ONE_WAY_MS = 25
const RUNTIME = "raw Miniflare/workerd (test/harness/worker.ts), vdrelay bridge process, SDK on Node 22 with ws"

const u32 = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset + at, 4).getUint32(0, true)

/**
 * The file straight to the agent's chardev socket (through the proxy): START, CAN_SEND_DATA, every DATA block written
 * at once (TCP and the chardev pace them), SUCCESS. Milliseconds from START to SUCCESS.
 */
const directSendFile = async (peer: DirectPeer, id: number, name: string, data: Uint8Array): Promise<number> => {
  const status = (result: number) => peer.next((m) => m.type === MessageType.FileXferStatus && u32(m.body, 0) === id && u32(m.body, 4) === result, 120_000)
  const t0 = now()
  const ready = status(FileXferResult.CanSendData)
  void peer.send(MessageType.FileXferStart, payload.fileXferStart(id, name, data.length))
  await ready
  const done = status(FileXferResult.Success)
  for (let at = 0; at < data.length; at += FILE_XFER_DATA_BLOCK) void peer.send(MessageType.FileXferData, payload.fileXferData(id, data.subarray(at, at + FILE_XFER_DATA_BLOCK)))
  await done
  return now() - t0
}

const checkFile = async (dir: string, name: string, data: Uint8Array): Promise<void> => {
  const landed = await readFile(join(dir, name))
  if (!landed.equals(data)) throw new Error(`${name}: ${landed.length} bytes landed, not the ${data.length} sent`)
  await rm(join(dir, name))
}

export default async (emit: Emit): Promise<void> => {
  const long = longRuns()
  const file = randomBytes(32 * MiB)
  // SPICE's window makes its rate independent of size (one window per round trip): a 4 MiB prefix gives the same
  // MiB/s as the whole 32 MiB in an eighth of the ~90 s; BENCH_LONG=1 sends all of it.
  const spiceBytes = long ? file.length : 4 * MiB
  const [relayAgent, spiceAgent] = await Promise.all([startRealAgent(), startRealAgent()])
  const worker = await startBenchWorker()
  const bridge = await startBridge(worker, [{ id: "wan", chardev: relayAgent.hostSocketPath }])
  const clientProxy = await startDelayProxy({ target: { host: "127.0.0.1", port: Number(new URL(worker.url).port) }, delayMs: ONE_WAY_MS })
  const spiceServer = await startSpiceServerEmu(spiceAgent.hostSocketPath)
  const spiceProxy = await startDelayProxy({ target: { host: "127.0.0.1", port: spiceServer.port }, delayMs: ONE_WAY_MS })
  const directProxy = await startDelayProxy({ target: { path: spiceAgent.hostSocketPath }, delayMs: ONE_WAY_MS })
  let session: Session | undefined
  let spice: SpiceClientEmu | undefined
  try {
    session = await openClient(worker, "wan", { base: `ws://127.0.0.1:${clientProxy.port}`, WebSocket: WebSocket as unknown as WebSocketConstructor })
    await agentReady(session)
    // The relay and the direct socket alternate run by run (the direct peer holds the second agent's chardev until
    // the SPICE emulation needs it); the first run of each warms the JIT and the TCP windows.
    const direct = await DirectPeer.connect({ port: directProxy.port })
    const ours: number[] = []
    const theirs: number[] = []
    try {
      await direct.send(MessageType.AnnounceCapabilities, payload.announce(1, defaultClientCaps[0]!))
      await direct.next((m) => m.type === MessageType.AnnounceCapabilities && u32(m.body, 0) === 0, 30_000)
      for (let run = 0; run < (long ? 5 : 3) + 1; run++) {
        const name = `wan-relay-${run}.bin`
        const t0 = now()
        await session.sendFile({ name, data: file }).done
        const ms = now() - t0
        await checkFile(relayAgent.xferDir, name, file)
        if (run > 0) ours.push(ms)
        const directName = `wan-direct-${run}.bin`
        const dms = await directSendFile(direct, 1000 + run, directName, file)
        await checkFile(spiceAgent.xferDir, directName, file)
        if (run > 0) theirs.push(dms)
      }
    } finally {
      await direct.close()
    }
    spice = await SpiceClientEmu.connect(spiceProxy.port)
    await spiceHandshake(spice, defaultClientCaps[0]!)
    const spiceData = file.subarray(0, spiceBytes)
    const spiceMs = await spiceSendFile(spice, 1, "wan-spice.bin", spiceData)
    await checkFile(spiceAgent.xferDir, "wan-spice.bin", spiceData)
    const oursMibps = mibps(file.length, median(ours))
    const directMibps = mibps(file.length, median(theirs))
    const spiceMibps = mibps(spiceBytes, spiceMs)
    const late = (clientProxy.stats.lateMsSum / Math.max(1, clientProxy.stats.deliveries)).toFixed(2)
    emit({
      name: `32 MiB file to the guest over +50 ms RTT: SDK → relay → real agent (${round(median(ours), 0)} ms, median of ${ours.length}) vs SPICE flow control emulation, ${SPICE_WINDOW} × 2 KiB tokens (${round(spiceBytes / MiB, 0)} MiB in ${round(spiceMs, 0)} ms, ${spice.framesSent} AGENT_DATA); proxy timer lateness ${late} ms mean; ${RUNTIME}`,
      value: round(oursMibps, 2),
      unit: "MiB/s",
      baseline: round(spiceMibps, 3),
      ratio: round(oursMibps / spiceMibps, 1),
    })
    emit({
      name: `32 MiB file to the guest over +50 ms RTT: SDK → relay → real agent (${round(median(ours), 0)} ms) vs the real agent's own speed over the same link, a host client on its chardev socket through the proxy with only TCP's window (${round(median(theirs), 0)} ms), medians of ${ours.length} alternating runs; ${RUNTIME}`,
      value: round(oursMibps, 2),
      unit: "MiB/s",
      baseline: round(directMibps, 2),
      ratio: round(oursMibps / directMibps, 3),
    })
  } finally {
    spice?.close()
    await session?.close().catch(() => {})
    await Promise.all([clientProxy.close(), spiceProxy.close(), directProxy.close(), spiceServer.close()])
    await bridge.stop()
    await worker.stop()
    await Promise.all([relayAgent.stop(), spiceAgent.stop()])
  }
}
