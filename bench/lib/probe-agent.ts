// The agent end of a chardev socket for latency probes: listens where QEMU's `-chardev socket,server=on` would, answers
// the capability handshake like spice-vdagent 0.22.1, and timestamps each whole message the moment its last byte is
// read, so no agent processing is inside a measured latency.
import { rmSync } from "node:fs"
import { type Server, type Socket, createServer } from "node:net"
import { encodeChunkedMessage } from "../../src/protocol/chunker.ts"
import { MessageType, Port } from "../../src/protocol/constants.ts"
import type { MessageHeader } from "../../src/protocol/header.ts"
import { StreamParser, type StreamSink } from "../../src/protocol/stream-parser.ts"
import { SPICE_VDAGENT_CAPS } from "../../src/protocol/known.ts"
import { u32At, u32s } from "../../test/harness/host-peer.ts"
import { now } from "./stats.ts"

/** The caps word spice-vdagent 0.22.1 announces (spec §11). */
export const AGENT_CAPS = SPICE_VDAGENT_CAPS
const HEAD = 16

export interface Arrival {
  readonly port: number
  readonly type: number
  readonly size: number
  /** performance.now() when the message's last byte was read. */
  readonly at: number
  /** The first ≤ 16 body bytes (probes put their sequence number there). */
  readonly head: Uint8Array
}

export class ProbeAgent {
  private socket: Socket | undefined
  private readonly listeners = new Set<(a: Arrival) => void>()
  private parser = this.newParser()
  private readonly partial = new Map<number, { header: MessageHeader; head: Uint8Array; fill: number }>()
  private hostWaiters: Array<() => void> = []
  /** Every arrival since listen, unless `record` is false. */
  readonly arrivals: Arrival[] = []
  record = true
  bytesIn = 0
  connections = 0

  private constructor(
    readonly path: string,
    private readonly server: Server,
    private readonly announce: boolean,
  ) {
    server.on("connection", (s) => this.onHost(s))
  }

  /** Listens on a UNIX socket path. `announce`: greet each new host with ANNOUNCE(request=1) as the real agent does. */
  static listen(path: string, opts: { announce?: boolean } = {}): Promise<ProbeAgent> {
    rmSync(path, { force: true })
    const server = createServer()
    return new Promise((resolve, reject) => {
      server.once("error", reject)
      server.listen(path, () => resolve(new ProbeAgent(path, server, opts.announce ?? true)))
    })
  }

  get hostConnected(): boolean {
    return this.socket !== undefined
  }

  waitForHost(): Promise<void> {
    if (this.socket !== undefined) return Promise.resolve()
    return new Promise((r) => this.hostWaiters.push(r))
  }

  /** Calls `fn` for every whole message as it arrives; returns the unsubscribe function. */
  onMessage(fn: (a: Arrival) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Resolves with the first future arrival matching `pred`. */
  next(pred: (a: Arrival) => boolean, timeoutMs = 30_000): Promise<Arrival> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (off(), reject(new Error(`probe agent ${this.path}: no matching message in ${timeoutMs} ms`))), timeoutMs)
      const off = this.onMessage((a) => {
        if (!pred(a)) return
        clearTimeout(timer)
        off()
        resolve(a)
      })
    })
  }

  /** Sends an agent→host message on the client port. */
  send(type: number, payload: Uint8Array, port: number = Port.Client): void {
    this.socket?.write(encodeChunkedMessage(port, type, payload, 0x7fffffff))
  }

  close(): Promise<void> {
    this.socket?.destroy()
    return new Promise((resolve) => this.server.close(() => (rmSync(this.path, { force: true }), resolve())))
  }

  private newParser(): StreamParser {
    return new StreamParser({ maxChunkSize: 0x7fffffff, maxMessageSize: 0x7fffffff })
  }

  private onHost(s: Socket): void {
    // A second host is refused, not queued: the probes use one host connection at a time.
    if (this.socket !== undefined) return void s.destroy()
    this.socket = s
    this.connections++
    this.parser = this.newParser()
    this.partial.clear()
    s.setNoDelay(true)
    s.on("data", (b: Buffer) => {
      this.bytesIn += b.length
      this.parser.push(new Uint8Array(b.buffer, b.byteOffset, b.length), this.sink)
    })
    s.on("error", () => {})
    s.on("close", () => {
      if (this.socket === s) this.socket = undefined
    })
    if (this.announce) this.send(MessageType.AnnounceCapabilities, u32s(1, AGENT_CAPS))
    for (const w of this.hostWaiters.splice(0)) w()
  }

  private arrived(port: number, header: MessageHeader, head: Uint8Array): void {
    const a: Arrival = { port, type: header.type, size: header.size, at: now(), head }
    if (this.record) this.arrivals.push(a)
    // The agent answers a client ANNOUNCE(request=1) with its own caps (request=0), as 0.22.1 does.
    if (a.type === MessageType.AnnounceCapabilities && head.length >= 4 && u32At(head, 0) === 1) {
      this.send(MessageType.AnnounceCapabilities, u32s(0, AGENT_CAPS))
    }
    for (const l of this.listeners) l(a)
  }

  private readonly sink: StreamSink = {
    message: (port, header, body) => this.arrived(port, header, body.slice(0, HEAD)),
    start: (port, header) => void this.partial.set(port, { header, head: new Uint8Array(Math.min(HEAD, header.size)), fill: 0 }),
    data: (port, bytes) => {
      const p = this.partial.get(port)
      if (p === undefined || p.fill >= p.head.length) return
      const take = Math.min(p.head.length - p.fill, bytes.length)
      p.head.set(bytes.subarray(0, take), p.fill)
      p.fill += take
    },
    end: (port) => {
      const p = this.partial.get(port)
      this.partial.delete(port)
      if (p !== undefined) this.arrived(port, p.header, p.head)
    },
    error: (e) => {
      process.stderr.write(`probe agent ${this.path}: invalid stream from host: ${e.detail}\n`)
      this.socket?.destroy()
    },
  }
}

export { u32At, u32s }
