// The direct-socket baseline: a lean host-side client of an agent's chardev socket, what a relay would be if it added
// nothing. Sends whole chunked messages and reassembles the agent's messages into one preallocated body each.
import { type Socket, connect } from "node:net"
import { encodeChunkedMessage } from "../../src/protocol/chunker.ts"
import { Port } from "../../src/protocol/constants.ts"
import type { MessageHeader } from "../../src/protocol/header.ts"
import { StreamParser, type StreamSink } from "../../src/protocol/stream-parser.ts"

export interface DirectMessage {
  readonly port: number
  readonly type: number
  readonly body: Uint8Array
}

export class DirectPeer {
  private readonly parser = new StreamParser({ maxChunkSize: 0x7fffffff, maxMessageSize: 0x7fffffff })
  private readonly partial = new Map<number, { header: MessageHeader; body: Uint8Array; fill: number }>()
  private readonly listeners = new Set<(m: DirectMessage) => void>()

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true)
    socket.on("data", (b: Buffer) => this.parser.push(new Uint8Array(b.buffer, b.byteOffset, b.length), this.sink))
    socket.on("error", () => {})
  }

  /** Connects to a chardev's UNIX socket `path`, or to a loopback TCP `port` (e.g. a delay proxy in front of one). */
  static async connect(to: string | { readonly port: number }): Promise<DirectPeer> {
    const socket = typeof to === "string" ? connect(to) : connect({ host: "127.0.0.1", port: to.port, noDelay: true })
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
    return new DirectPeer(socket)
  }

  /** Chunks a message (≤ 2048 bytes per chunk, as the agent requires host→guest) and writes it in one call. */
  send(type: number, payload: Uint8Array, port: number = Port.Client): Promise<void> {
    return this.write(encodeChunkedMessage(port, type, payload))
  }

  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (e) => (e ? reject(e) : resolve())))
  }

  onMessage(fn: (m: DirectMessage) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  next(pred: (m: DirectMessage) => boolean, timeoutMs = 30_000): Promise<DirectMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (off(), reject(new Error(`direct peer: no matching message in ${timeoutMs} ms`))), timeoutMs)
      const off = this.onMessage((m) => pred(m) && (clearTimeout(timer), off(), resolve(m)))
    })
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve()
      this.socket.once("close", () => resolve())
      this.socket.end()
      setTimeout(() => this.socket.destroy(), 1000).unref()
    })
  }

  private deliver(m: DirectMessage): void {
    for (const l of this.listeners) l(m)
  }

  private readonly sink: StreamSink = {
    message: (port, header, body) => this.deliver({ port, type: header.type, body: body.slice() }),
    start: (port, header) => void this.partial.set(port, { header, body: new Uint8Array(header.size), fill: 0 }),
    data: (port, bytes) => {
      const p = this.partial.get(port)
      if (p === undefined) return
      p.body.set(bytes, p.fill)
      p.fill += bytes.length
    },
    end: (port) => {
      const p = this.partial.get(port)
      this.partial.delete(port)
      if (p !== undefined) this.deliver({ port, type: p.header.type, body: p.body })
    },
    error: (e) => {
      process.stderr.write(`direct peer: invalid agent stream: ${e.detail}\n`)
      this.socket.destroy()
    },
  }
}
