// Test fixtures for the bridge: a fake relay (a `ws` server speaking the bridge link with the real codecs), a fake
// chardev (a UNIX socket server standing in for QEMU's `-chardev socket,server=on`), and an in-process bridge.
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Fiber } from "effect"
import { afterEach } from "vitest"
import { WebSocketServer, type WebSocket } from "ws"
import { runBridge } from "../../../src/bridge/bridge.ts"
import { parseConfig } from "../../../src/bridge/config.ts"
import { type LogLevel } from "../../../src/bridge/log.ts"
import { Metrics } from "../../../src/bridge/metrics.ts"
import { type BridgeToRelay, decodeBridgeToRelay, encodeRelayToBridge, LINK_PING, LINK_PONG, type RelayToBridge } from "../../../src/link/index.ts"

/** Waits until `pred()` holds (polling); fails with `what` after a generous deadline. Not a timing assertion. */
export const until = async (pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A list the calling test file pushes its teardowns to; after each test they run newest first and the list empties. */
export const cleanupAfterEach = (): Array<() => Promise<void>> => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c()
    cleanups.length = 0
  })
  return cleanups
}

export const tempDir = async (): Promise<{ dir: string; cleanup: () => Promise<void> }> => {
  const dir = await mkdtemp(join(tmpdir(), "vdrelay-bridge-"))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

export type Hello = Extract<BridgeToRelay, { t: "hello" }>

export class RelayConn {
  readonly frames: Array<BridgeToRelay> = []
  closeCode: number | undefined
  closeReason = ""
  constructor(
    readonly ws: WebSocket,
    readonly authorization: string | undefined,
    readonly path: string,
  ) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      // The heartbeat is a fixed text frame the real edge answers itself (src/link/heartbeat.ts): answer it likewise.
      if (!isBinary && data.toString() === LINK_PING) return void ws.send(LINK_PONG)
      const d = decodeBridgeToRelay(data)
      if (d._tag === "Invalid") throw new Error(`bridge sent an invalid frame: ${d.reason} ${d.detail}`)
      this.frames.push(d.value)
    })
    ws.on("close", (code, reason) => {
      this.closeCode = code
      this.closeReason = reason.toString()
    })
  }
  get hello(): Hello | undefined {
    return this.frames.find((f): f is Hello => f.t === "hello")
  }
  of<T extends BridgeToRelay["t"]>(t: T): Array<Extract<BridgeToRelay, { t: T }>> {
    return this.frames.filter((f): f is Extract<BridgeToRelay, { t: T }> => f.t === t)
  }
  send(frame: RelayToBridge): void {
    this.ws.send(encodeRelayToBridge(frame))
  }
  /** Agent bytes received on this link, concatenated in arrival order (positions checked contiguous from `from`). */
  agentBytes(from: number): Buffer {
    const data = this.of("data")
    let pos = from
    const parts: Array<Uint8Array> = []
    for (const d of data) {
      if (d.pos !== pos) throw new Error(`data at ${d.pos}, expected ${pos}`)
      parts.push(d.bytes)
      pos += d.bytes.length
    }
    return Buffer.concat(parts)
  }
  get agentEnd(): number {
    const data = this.of("data")
    const last = data[data.length - 1]
    return last === undefined ? -1 : last.pos + last.bytes.length
  }
}

export interface FakeRelay {
  readonly url: string
  readonly conns: Array<RelayConn>
  /** Resolves with the n-th connection (0-based) once its hello arrived. */
  conn(n: number): Promise<RelayConn>
  close(): Promise<void>
}

export const startFakeRelay = async (): Promise<FakeRelay> => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise<void>((ok) => wss.once("listening", () => ok()))
  const conns: Array<RelayConn> = []
  wss.on("connection", (ws, req) => conns.push(new RelayConn(ws, req.headers.authorization, req.url ?? "")))
  const { port } = wss.address() as { port: number }
  return {
    url: `ws://127.0.0.1:${port}/v1/vms/{vm}/agent`,
    conns,
    conn: async (n) => {
      await until(() => conns[n]?.hello !== undefined, `relay connection ${n} with hello`)
      return conns[n]!
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const c of wss.clients) c.terminate()
        wss.close(() => ok())
      }),
  }
}

export interface FakeChardev {
  readonly path: string
  /** Bytes the bridge wrote, per connection. */
  readonly received: Array<Array<Buffer>>
  readonly sockets: Array<net.Socket>
  readonly current: net.Socket | undefined
  receivedBytes(conn?: number): Buffer
  close(): Promise<void>
}

/** QEMU's side of `-chardev socket,server=on`: one host connection at a time (a later one waits in the backlog). */
export const startFakeChardev = async (path: string, opts: { pausedReads?: boolean } = {}): Promise<FakeChardev> => {
  const received: Array<Array<Buffer>> = []
  const sockets: Array<net.Socket> = []
  const server = net.createServer((socket) => {
    const chunks: Array<Buffer> = []
    received.push(chunks)
    sockets.push(socket)
    if (opts.pausedReads) socket.pause()
    socket.on("data", (d: Buffer) => chunks.push(d))
    socket.on("error", () => {})
  })
  await new Promise<void>((ok) => server.listen(path, () => ok()))
  return {
    path,
    received,
    sockets,
    get current() {
      const s = sockets[sockets.length - 1]
      return s !== undefined && !s.destroyed ? s : undefined
    },
    receivedBytes: (conn = received.length - 1) => Buffer.concat(received[conn] ?? []),
    close: () =>
      new Promise<void>((ok) => {
        for (const s of sockets) s.destroy()
        server.close(() => ok())
      }),
  }
}

export interface LogLine {
  readonly level: LogLevel
  readonly event: string
  readonly [k: string]: unknown
}

export interface InProcessBridge {
  readonly metrics: Metrics
  readonly logs: Array<LogLine>
  metric(name: Parameters<Metrics["get"]>[0], labels?: Record<string, string>): number
  stop(): Promise<void>
}

/** Runs the bridge in this process on a config object (the same JSON the CLI reads). */
export const startBridge = async (dir: string, config: Record<string, unknown>): Promise<InProcessBridge> => {
  const tokenFile = join(dir, "{vm}.token")
  for (const vm of (config.vms as Array<{ id: string }> | undefined) ?? []) await writeFile(join(dir, `${vm.id}.token`), `token-for-${vm.id}\n`)
  const parsed = parseConfig(JSON.stringify({ tokenFile, bridge: "test-host", reconnect: { baseMs: 20, capMs: 200 }, ...config }), "host")
  const logs: Array<LogLine> = []
  const metrics = new Metrics()
  const logger = { log: (level: LogLevel, event: string, fields = {}) => void logs.push({ level, event, ...fields }) }
  const fiber = Effect.runFork(Effect.scoped(runBridge(parsed, logger, metrics)))
  return {
    metrics,
    logs,
    metric: (name, labels = { vm: "vm1" }) => metrics.get(name, labels),
    stop: async () => {
      await Effect.runPromise(Fiber.interrupt(fiber))
    },
  }
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export const bytes = (n: number, seed = 1): Buffer => {
  const out = Buffer.allocUnsafe(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}
