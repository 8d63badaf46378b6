// The host end of the emulated chardev for tests and the golden capture: sends chunked messages to the real agent and
// reassembles what it answers with src/protocol's StreamParser, keeping each message's raw wire bytes as captured.
import { connect, type Socket } from "node:net"
import { concatBytes, readU32LE } from "../../src/protocol/bytes.ts"
import { CHUNK_HEADER_SIZE, MessageType, Port, messageTypeName } from "../../src/protocol/constants.ts"
import { encodeChunkedMessage } from "../../src/protocol/chunker.ts"
import type { MessageHeader } from "../../src/protocol/header.ts"
import { StreamParser } from "../../src/protocol/stream-parser.ts"

export interface AgentMessage {
  readonly port: number
  readonly type: number
  readonly header: MessageHeader
  readonly body: Uint8Array
  /** The chunk(s) exactly as read from the socket: chunk header(s), message header, body. */
  readonly raw: Uint8Array
  /** Milliseconds since the peer connected. */
  readonly at: number
}

export class HostPeer {
  private readonly inbox: AgentMessage[] = []
  private readonly waiters = new Set<() => void>()
  private readonly parser = new StreamParser({ maxChunkSize: 0x7fffffff, maxMessageSize: 0x7fffffff })
  /** Raw bytes not yet split into chunks. */
  private pending: Uint8Array = new Uint8Array(0)
  private readonly rawByPort = new Map<number, Uint8Array[]>()
  private readonly bodyByPort = new Map<number, { header: MessageHeader; parts: Uint8Array[] }>()
  private readonly t0 = Date.now()
  private failure: Error | undefined
  closed = false
  /** Every message received, in order, including those already taken. */
  readonly received: AgentMessage[] = []

  private constructor(private readonly socket: Socket) {
    socket.on("data", (b: Buffer) => this.onData(new Uint8Array(b.buffer, b.byteOffset, b.length)))
    socket.on("error", (e) => this.fail(e))
    socket.on("close", () => {
      this.closed = true
      this.fail(new Error("host peer: connection closed"))
    })
  }

  static async connect(path: string): Promise<HostPeer> {
    const socket = connect(path)
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve)
      socket.once("error", reject)
    })
    return new HostPeer(socket)
  }

  /** Writes raw bytes (a whole chunked message, or deliberately part of one). Resolves once handed to the kernel. */
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (e) => (e ? reject(e) : resolve())))
  }

  /** Encodes a message as host→guest chunks of ≤ 2048 bytes, sends it and returns the bytes sent. */
  async send(type: number, payload: Uint8Array, port: number = Port.Client): Promise<Uint8Array> {
    const bytes = encodeChunkedMessage(port, type, payload)
    await this.write(bytes)
    return bytes
  }

  /** Removes and returns the first received message of `type` (optionally also matching `where`), waiting for it. */
  async expect(type: number, opts: { timeoutMs?: number; where?: (m: AgentMessage) => boolean } = {}): Promise<AgentMessage> {
    const match = (m: AgentMessage): boolean => m.type === type && (opts.where === undefined || opts.where(m))
    const timeoutMs = opts.timeoutMs ?? 10_000
    const take = (): AgentMessage | undefined => {
      const i = this.inbox.findIndex(match)
      return i < 0 ? undefined : this.inbox.splice(i, 1)[0]
    }
    const hit = take()
    if (hit !== undefined) return hit
    return new Promise<AgentMessage>((resolve, reject) => {
      const check = (): void => {
        const m = take()
        if (m === undefined && this.failure === undefined) return
        clearTimeout(timer)
        this.waiters.delete(check)
        if (m !== undefined) resolve(m)
        else reject(this.failure)
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        const seen = this.inbox.map((m) => messageTypeName(m.type)).join(", ")
        reject(new Error(`host peer: no ${messageTypeName(type)} within ${timeoutMs} ms (unclaimed: [${seen}])`))
      }, timeoutMs)
      this.waiters.add(check)
    })
  }

  /** Messages received and not yet taken by `expect`. */
  get unclaimed(): ReadonlyArray<AgentMessage> {
    return this.inbox
  }

  /** Drops unclaimed messages (e.g. clipboard releases that a reset produced). */
  clear(): void {
    this.inbox.length = 0
  }

  async close(): Promise<void> {
    if (this.closed || this.socket.destroyed) return
    await new Promise<void>((resolve) => {
      this.socket.once("close", () => resolve())
      this.socket.end()
      setTimeout(() => this.socket.destroy(), 1000).unref()
    })
  }

  /** Abrupt close (RST where the kernel sends one), as a crashing bridge would. */
  destroy(): void {
    this.socket.destroy()
  }

  private onData(b: Uint8Array): void {
    let buf = this.pending.length === 0 ? b : concatBytes([this.pending, b])
    // Split into whole chunks first, so that each message keeps the exact bytes it arrived in.
    while (buf.length >= CHUNK_HEADER_SIZE) {
      const v = new DataView(buf.buffer, buf.byteOffset, CHUNK_HEADER_SIZE)
      const port = v.getUint32(0, true)
      const size = v.getUint32(4, true)
      if (buf.length < CHUNK_HEADER_SIZE + size) break
      const chunk = buf.slice(0, CHUNK_HEADER_SIZE + size)
      buf = buf.subarray(CHUNK_HEADER_SIZE + size)
      const raws = this.rawByPort.get(port) ?? []
      raws.push(chunk)
      this.rawByPort.set(port, raws)
      this.parser.push(chunk, this.sink)
    }
    this.pending = buf.slice()
  }

  private readonly sink = {
    message: (port: number, header: MessageHeader, body: Uint8Array): void => this.deliver(port, header, body.slice()),
    start: (port: number, header: MessageHeader): void => void this.bodyByPort.set(port, { header, parts: [] }),
    data: (port: number, bytes: Uint8Array): void => void this.bodyByPort.get(port)?.parts.push(bytes.slice()),
    end: (port: number): void => {
      const m = this.bodyByPort.get(port)
      this.bodyByPort.delete(port)
      if (m !== undefined) this.deliver(port, m.header, concatBytes(m.parts))
    },
    error: (e: { detail: string }): void => this.fail(new Error(`host peer: agent stream invalid: ${e.detail}`)),
  }

  private deliver(port: number, header: MessageHeader, body: Uint8Array): void {
    const raw = concatBytes(this.rawByPort.get(port) ?? [])
    this.rawByPort.delete(port)
    const m: AgentMessage = { port, type: header.type, header, body, raw, at: Date.now() - this.t0 }
    this.received.push(m)
    this.inbox.push(m)
    for (const w of [...this.waiters]) w()
  }

  private fail(e: Error): void {
    this.failure ??= e
    for (const w of [...this.waiters]) w()
  }
}

/** Little-endian u32 words, the shape of most vdagent payloads. */
export const u32s = (...words: number[]): Uint8Array => {
  const out = new Uint8Array(words.length * 4)
  const v = new DataView(out.buffer)
  words.forEach((w, i) => v.setUint32(i * 4, w >>> 0, true))
  return out
}

/** The little-endian u32 at `at` (src/protocol's reader, by the name these tests use). */
export const u32At = readU32LE

/** A payload read as little-endian u32 words (a trailing partial word is ignored). */
export const words = (b: Uint8Array): number[] => Array.from({ length: b.length >>> 2 }, (_, i) => u32At(b, i * 4))

/**
 * Hand-written payloads for the host→agent messages the harness sends (spec §2), kept independent of src/protocol's
 * payload codecs on purpose: the golden vectors captured with them are what those codecs are tested against.
 * Selection-prefixed forms assume the client announced CLIPBOARD_SELECTION (and GRAB_SERIAL for grabs).
 */
export const payload = {
  announce: (request: 0 | 1, caps: number): Uint8Array => u32s(request, caps),
  /** One monitor, flags 0 (no physical-size array: 0.22.1 drops MONITORS_CONFIG carrying one). Height before width. */
  monitorsConfig: (width: number, height: number): Uint8Array => u32s(1, 0, height, width, 32, 0, 0),
  grab: (selection: number, serial: number, types: number[]): Uint8Array => u32s(selection, serial, ...types),
  request: (selection: number, type: number): Uint8Array => u32s(selection, type),
  clipboard: (selection: number, type: number, data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(8 + data.length)
    out.set(u32s(selection, type))
    out.set(data, 8)
    return out
  },
  release: (selection: number): Uint8Array => u32s(selection),
  /** u32 id, then the GLib key file spice-gtk sends, NUL-terminated (spec §7 item 8). */
  fileXferStart: (id: number, name: string, size: number): Uint8Array => {
    const text = new TextEncoder().encode(`[vdagent-file-xfer]\nname=${name}\nsize=${size}\n\0`)
    const out = new Uint8Array(4 + text.length)
    out.set(u32s(id))
    out.set(text, 4)
    return out
  },
  /** u32 id, u64 size, bytes. */
  fileXferData: (id: number, data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(12 + data.length)
    const v = new DataView(out.buffer)
    v.setUint32(0, id, true)
    v.setBigUint64(4, BigInt(data.length), true)
    out.set(data, 12)
    return out
  },
} as const

export { MessageType, Port }
