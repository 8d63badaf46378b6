// An emulation of SPICE's agent-channel flow control (spec §4, §5.3–5.4, §7) for the WAN baseline: a spice-server
// main channel in front of a chardev socket and a spice-gtk-like client, speaking mini-header AGENT_DATA/AGENT_TOKEN
// frames over TCP. The client holds 10 tokens; each AGENT_DATA (≤ 2048 bytes, never two messages) costs one; the
// server returns one token per chunk the device has consumed (or in batches, like spice-server's 5).
import { type AddressInfo, type Server, type Socket, connect, createServer } from "node:net"
import {
  CHUNK_HEADER_SIZE, FILE_XFER_DATA_BLOCK, FileXferResult, MESSAGE_HEADER_SIZE, MessageType, Port, VD_AGENT_MAX_DATA_SIZE,
  VD_AGENT_PROTOCOL,
} from "../../src/protocol/constants.ts"
import { payload } from "../../test/harness/host-peer.ts"

/** Main-channel message numbers (spec §1.5). */
const Msg = { ServerAgentData: 109, ServerAgentToken: 110, ClientAgentStart: 106, ClientAgentData: 107 } as const
const MINI_HEADER = 6
/** REDS_AGENT_WINDOW_SIZE: the client's token window. */
export const SPICE_WINDOW = 10

const frame = (type: number, payload: Uint8Array): Buffer => {
  const out = Buffer.allocUnsafe(MINI_HEADER + payload.length)
  out.writeUInt16LE(type, 0)
  out.writeUInt32LE(payload.length, 2)
  out.set(payload, MINI_HEADER)
  return out
}

/** Splits a mini-header frame stream into (type, payload) calls, across arbitrary reads. */
class FrameReader {
  private pending: Buffer = Buffer.alloc(0)
  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}
  push(b: Buffer): void {
    let buf = this.pending.length === 0 ? b : Buffer.concat([this.pending, b])
    let at = 0
    while (buf.length - at >= MINI_HEADER) {
      const size = buf.readUInt32LE(at + 2)
      if (buf.length - at < MINI_HEADER + size) break
      this.onFrame(buf.readUInt16LE(at), buf.subarray(at + MINI_HEADER, at + MINI_HEADER + size))
      at += MINI_HEADER + size
    }
    this.pending = at === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at))
  }
}

export interface SpiceServerEmu {
  readonly port: number
  close(): Promise<void>
}

/**
 * Accepts one client at a time and connects it to the chardev at `devicePath`. Client AGENT_DATA → one chunk on
 * port 1; a token is freed when the device write completes and refunded once `refundBatch` are free. Device chunks
 * on port 1 are cut into ≤ 2048-byte AGENT_DATA (the client granted unlimited tokens, as spice-gtk does).
 */
export const startSpiceServerEmu = async (devicePath: string, refundBatch = 1): Promise<SpiceServerEmu> => {
  const sockets = new Set<Socket>()
  const server: Server = createServer({ noDelay: true }, (client) => {
    const device = connect(devicePath)
    sockets.add(client).add(device)
    let free = 0
    const reader = new FrameReader((type, payload) => {
      if (type !== Msg.ClientAgentData) return
      const chunk = Buffer.allocUnsafe(CHUNK_HEADER_SIZE + payload.length)
      chunk.writeUInt32LE(Port.Client, 0)
      chunk.writeUInt32LE(payload.length, 4)
      chunk.set(payload, CHUNK_HEADER_SIZE)
      device.write(chunk, () => {
        if (++free < refundBatch) return
        const n = Buffer.allocUnsafe(4)
        n.writeUInt32LE(free, 0)
        free = 0
        client.write(frame(Msg.ServerAgentToken, n))
      })
    })
    client.on("data", (b: Buffer) => reader.push(b))
    // Device side: the raw chunk stream; port-1 chunk bodies go to the client in ≤ 2048-byte units.
    let header = Buffer.alloc(0)
    let port = 0
    let remaining = 0
    device.on("data", (b: Buffer) => {
      let at = 0
      while (at < b.length) {
        if (remaining === 0) {
          const take = Math.min(CHUNK_HEADER_SIZE - header.length, b.length - at)
          header = Buffer.concat([header, b.subarray(at, at + take)])
          at += take
          if (header.length < CHUNK_HEADER_SIZE) break
          port = header.readUInt32LE(0)
          remaining = header.readUInt32LE(4)
          header = Buffer.alloc(0)
          continue
        }
        const take = Math.min(remaining, VD_AGENT_MAX_DATA_SIZE, b.length - at)
        if (port === Port.Client) client.write(frame(Msg.ServerAgentData, b.subarray(at, at + take)))
        at += take
        remaining -= take
      }
    })
    const teardown = (): void => {
      client.destroy()
      device.destroy()
      sockets.delete(client)
      sockets.delete(device)
    }
    client.on("close", teardown).on("error", teardown)
    device.on("close", teardown).on("error", teardown)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", resolve)
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

export interface AgentMessageIn {
  readonly type: number
  readonly body: Buffer
}

/** The client side: spice-gtk's outgoing queue drained while tokens last, and reassembly of the agent's stream. */
export class SpiceClientEmu {
  private tokens = SPICE_WINDOW
  private readonly queue: Array<{ piece: Buffer; done?: () => void }> = []
  private readonly listeners = new Set<(m: AgentMessageIn) => void>()
  private inbound = Buffer.alloc(0)
  /** AGENT_DATA frames sent and tokens received, for the report. */
  framesSent = 0
  tokensReceived = 0

  private constructor(private readonly socket: Socket) {
    const reader = new FrameReader((type, payload) => {
      if (type === Msg.ServerAgentToken) {
        this.tokens += payload.readUInt32LE(0)
        this.tokensReceived += payload.readUInt32LE(0)
        this.drain()
      } else if (type === Msg.ServerAgentData) this.receive(payload)
    })
    socket.on("data", (b: Buffer) => reader.push(b))
  }

  static async connect(port: number): Promise<SpiceClientEmu> {
    const socket = connect({ host: "127.0.0.1", port, noDelay: true })
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
    const c = new SpiceClientEmu(socket)
    // AGENT_START with unlimited server→client tokens, as spice-gtk sends it.
    socket.write(frame(Msg.ClientAgentStart, Buffer.from([0xff, 0xff, 0xff, 0xff])))
    return c
  }

  /** Queues a whole agent message as AGENT_DATA pieces; resolves when its last piece has left the queue. */
  send(type: number, payload: Uint8Array): Promise<void> {
    const header = Buffer.alloc(MESSAGE_HEADER_SIZE)
    header.writeUInt32LE(VD_AGENT_PROTOCOL, 0)
    header.writeUInt32LE(type, 4)
    header.writeUInt32LE(payload.length, 16)
    const first = Math.min(payload.length, VD_AGENT_MAX_DATA_SIZE - MESSAGE_HEADER_SIZE)
    const pieces: Buffer[] = [Buffer.concat([header, payload.subarray(0, first)])]
    for (let at = first; at < payload.length; at += VD_AGENT_MAX_DATA_SIZE) {
      pieces.push(Buffer.from(payload.buffer, payload.byteOffset + at, Math.min(VD_AGENT_MAX_DATA_SIZE, payload.length - at)))
    }
    return new Promise((resolve) => {
      pieces.forEach((piece, i) => this.queue.push(i === pieces.length - 1 ? { piece, done: resolve } : { piece }))
      this.drain()
    })
  }

  onMessage(fn: (m: AgentMessageIn) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  next(pred: (m: AgentMessageIn) => boolean, timeoutMs = 120_000): Promise<AgentMessageIn> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (off(), reject(new Error(`spice client: no matching agent message in ${timeoutMs} ms`))), timeoutMs)
      const off = this.onMessage((m) => pred(m) && (clearTimeout(timer), off(), resolve(m)))
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private drain(): void {
    while (this.tokens > 0 && this.queue.length > 0) {
      const { piece, done } = this.queue.shift()!
      this.tokens--
      this.framesSent++
      this.socket.write(frame(Msg.ClientAgentData, piece))
      done?.()
    }
  }

  private receive(bytes: Buffer): void {
    let buf = this.inbound.length === 0 ? bytes : Buffer.concat([this.inbound, bytes])
    while (buf.length >= MESSAGE_HEADER_SIZE) {
      const size = buf.readUInt32LE(16)
      if (buf.length < MESSAGE_HEADER_SIZE + size) break
      const m = { type: buf.readUInt32LE(4), body: Buffer.from(buf.subarray(MESSAGE_HEADER_SIZE, MESSAGE_HEADER_SIZE + size)) }
      buf = buf.subarray(MESSAGE_HEADER_SIZE + size)
      for (const l of this.listeners) l(m)
    }
    this.inbound = Buffer.from(buf)
  }
}

const u32 = (b: Buffer, at: number): number => b.readUInt32LE(at)

/** The file-transfer status messages of `id` (FILE_XFER_STATUS: u32 id, u32 result). */
const status = (c: SpiceClientEmu, id: number, result: number): Promise<AgentMessageIn> =>
  c.next((m) => m.type === MessageType.FileXferStatus && u32(m.body, 0) === id && u32(m.body, 4) === result)

/**
 * spice-gtk's transfer of one file (spec §7 item 8): START, wait for CAN_SEND_DATA, DATA blocks of 64 KiB each read
 * only after the previous block left the queue, then wait for SUCCESS. Resolves with the milliseconds from START.
 */
export const spiceSendFile = async (c: SpiceClientEmu, id: number, name: string, data: Uint8Array): Promise<number> => {
  const t0 = performance.now()
  const ready = status(c, id, FileXferResult.CanSendData)
  await c.send(MessageType.FileXferStart, payload.fileXferStart(id, name, data.length))
  await ready
  const done = status(c, id, FileXferResult.Success)
  for (let at = 0; at < data.length; at += FILE_XFER_DATA_BLOCK) {
    await c.send(MessageType.FileXferData, payload.fileXferData(id, data.subarray(at, at + FILE_XFER_DATA_BLOCK)))
  }
  await done
  return performance.now() - t0
}

/** The client's ANNOUNCE(request=1) and the agent's answer, as spice-gtk opens the agent channel. */
export const spiceHandshake = async (c: SpiceClientEmu, caps: number): Promise<void> => {
  const reply = c.next((m) => m.type === MessageType.AnnounceCapabilities && u32(m.body, 0) === 0)
  await c.send(MessageType.AnnounceCapabilities, payload.announce(1, caps))
  await reply
}
