// A tap on the agent chardev of a real VM: a UNIX-socket proxy between the bridge and QEMU's vdagent.sock that hands
// every byte through unchanged and parses both directions of every connection from its byte 0, as the agent and the
// bridge parse them. It judges the whole host→guest stream, not one message at a time (issue 11 item 3):
//   torn       a connection's bytes that are no chunk header / a chunk that starts no message / a message past its size
//   duplicated a client message written twice (a FILE_XFER_START id, a FILE_XFER_DATA block of a transfer by content,
//              more CLIPBOARDs on a connection than the guest asked for with CLIPBOARD_REQUEST)
//   stale      DATA of a transfer after its cancel, or on another connection than its START
// plus byte counters each way, with `when(dir, at)` to inject a fault while a message is in the middle of crossing.
import { createHash } from "node:crypto"
import { rm } from "node:fs/promises"
import net from "node:net"
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE, MessageType } from "../../src/protocol/constants.ts"

const {
  Clipboard: CLIPBOARD,
  ClipboardRequest: CLIPBOARD_REQUEST,
  FileXferStart: FILE_XFER_START,
  FileXferStatus: FILE_XFER_STATUS,
  FileXferData: FILE_XFER_DATA,
  ClientDisconnected: CLIENT_DISCONNECTED,
} = MessageType
const CHUNK_HEADER = CHUNK_HEADER_SIZE
const MESSAGE_HEADER = MESSAGE_HEADER_SIZE

export type Problem = { readonly kind: "torn" | "duplicated" | "stale"; readonly text: string }

interface Partial {
  readonly type: number
  readonly size: number
  readonly parts: Buffer[]
  got: number
}

interface Transfer {
  readonly connection: number
  readonly parts: Buffer[]
  readonly blocks: Set<string>
  cancelled: boolean
}

const digest = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex")

/** One direction of one connection, parsed from its byte 0 into chunks and messages. */
class Parser {
  private pending = Buffer.alloc(0)
  private lost = false
  private readonly partial = new Map<number, Partial>()
  messages = 0
  bytes = 0

  constructor(
    private readonly label: string,
    /** The largest chunk: 2048 host→guest (VD_AGENT_MAX_DATA_SIZE); the guest's daemon writes a message as one chunk. */
    private readonly maxChunk: number,
    private readonly onMessage: (port: number, type: number, payload: Buffer) => void,
    private readonly onTorn: (text: string) => void,
  ) {}

  /** Bytes of a message begun and not finished (the connection ended inside it). */
  get open(): number {
    let n = this.pending.length
    for (const p of this.partial.values()) n += p.got
    return n
  }

  feed(bytes: Buffer): void {
    this.bytes += bytes.length
    if (this.lost) return
    this.pending = this.pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.pending, bytes])
    let at = 0
    while (this.pending.length - at >= CHUNK_HEADER) {
      const port = this.pending.readUInt32LE(at)
      const size = this.pending.readUInt32LE(at + 4)
      if ((port !== 1 && port !== 2) || size === 0 || size > this.maxChunk) {
        return this.torn(`${this.label} byte ${this.bytes - this.pending.length + at}: no chunk header (port ${port}, size ${size})`)
      }
      if (this.pending.length - at < CHUNK_HEADER + size) break
      this.chunk(port, this.pending.subarray(at + CHUNK_HEADER, at + CHUNK_HEADER + size))
      if (this.lost) return
      at += CHUNK_HEADER + size
    }
    this.pending = this.pending.subarray(at)
  }

  private torn(text: string): void {
    this.lost = true
    this.onTorn(text)
  }

  private chunk(port: number, body: Buffer): void {
    let p = this.partial.get(port)
    if (p === undefined) {
      if (body.length < MESSAGE_HEADER || body.readUInt32LE(0) !== 1) return this.torn(`${this.label}: a port-${port} chunk starts no message`)
      p = { type: body.readUInt32LE(4), size: body.readUInt32LE(16), parts: [], got: 0 }
      this.partial.set(port, p)
      body = body.subarray(MESSAGE_HEADER)
    }
    p.parts.push(Buffer.from(body))
    p.got += body.length
    if (p.got > p.size) return this.torn(`${this.label}: a type ${p.type} message runs ${p.got - p.size} bytes past its size`)
    if (p.got < p.size) return
    this.partial.delete(port)
    this.messages++
    this.onMessage(port, p.type, Buffer.concat(p.parts))
  }
}

export interface TapConnection {
  readonly id: number
  readonly toGuest: Parser
  readonly fromGuest: Parser
  /** CLIPBOARD_REQUESTs the guest sent / CLIPBOARDs handed to it, by content. */
  requests: number
  readonly clipboards: Map<string, number>
  closed: boolean
  /** The caps exchange and clipboard grabs each way, in order ("→announce req=1", "←grab sel=0 serial=3"). */
  readonly trace: string[]
}

const ANNOUNCE_CAPABILITIES = 6
const CLIPBOARD_GRAB = 7

/** Grab serials only mean something against the caps exchanges that reset them: both are traced. */
const trace = (c: TapConnection, dir: "→" | "←", type: number, payload: Buffer): void => {
  if (type === ANNOUNCE_CAPABILITIES && payload.length >= 4) c.trace.push(`${dir}announce req=${payload.readUInt32LE(0)}`)
  else if (type === CLIPBOARD_GRAB && payload.length >= 8) c.trace.push(`${dir}grab sel=${payload[0]} serial=${payload.readUInt32LE(4)}`)
  else if (type === CLIPBOARD) c.trace.push(`${dir}clipboard ${payload.length} B`)
  else if (type === CLIPBOARD_REQUEST) c.trace.push(`${dir}request`)
  else return
  if (c.trace.length > 60) c.trace.splice(0, c.trace.length - 60)
}

export class ChardevTap {
  readonly problems: Problem[] = []
  /** Guest→host streams that did not parse (not the relay's doing; reported, not judged). */
  readonly notes: string[] = []
  readonly connections: TapConnection[] = []
  /** Bytes handed to QEMU (up: host→guest) and from it (down: guest→host) since start, all connections. */
  up = 0
  down = 0
  /** Connections from the bridge that found no chardev to join (QEMU not running). */
  refused = 0
  /** The most bytes the tap ever queued for QEMU beyond what QEMU's socket took (it never pauses the bridge). */
  maxBacklog = 0
  private readonly transfers = new Map<number, Transfer>()
  private readonly sockets = new Set<net.Socket>()
  private watches: Array<{ readonly dir: "up" | "down"; readonly at: number; readonly fire: () => void }> = []

  private constructor(
    private readonly server: net.Server,
    readonly path: string,
  ) {}

  /** Listens on `path`; every connection to it is joined to a new connection to `target` (QEMU's chardev socket). */
  static async start(path: string, target: string): Promise<ChardevTap> {
    await rm(path, { force: true })
    const server = net.createServer()
    const tap = new ChardevTap(server, path)
    server.on("connection", (host) => tap.join(host, target))
    await new Promise<void>((ok) => server.listen(path, () => ok()))
    return tap
  }

  private join(host: net.Socket, target: string): void {
    const id = this.connections.length
    const guest = net.connect(target)
    let joined = false
    guest.once("connect", () => void (joined = true))
    const c: TapConnection = {
      id,
      requests: 0,
      clipboards: new Map(),
      closed: false,
      trace: [],
      toGuest: new Parser(`connection ${id} host→guest`, 2048, (port, type, payload) => this.toGuest(c, port, type, payload), (t) => this.problem("torn", t)),
      // What the guest itself sends is the agent's business (a daemon killed mid-message leaves half of one): noted.
      fromGuest: new Parser(`connection ${id} guest→host`, 64 << 20, (_port, type, payload) => {
        if (type === CLIPBOARD_REQUEST) c.requests++
        trace(c, "←", type, payload)
      }, (t) => this.notes.push(t)),
    }
    this.connections.push(c)
    this.sockets.add(host).add(guest)
    // Host→guest is never paused: QEMU notices a host hang-up at once whether or not it is reading (its G_IO_HUP
    // watch does not depend on the read watch, chardev/char-socket.c) and drops what the socket holds. A tap that
    // paused the bridge's side for backpressure would not see the bridge leave until QEMU had drained the old
    // connection into the guest's next opener: stale bytes of the tap's own making (docs/qemu-facts.md §2). So the
    // tap reads whatever the bridge writes, queues it for QEMU, and drops the queue and QEMU's socket on a hang-up.
    // `up` counts what the kernel took for QEMU's socket, as "crossed the chardev" did with a piped stream.
    host.on("data", (d: Buffer) => {
      c.toGuest.feed(d)
      if (guest.destroyed) return
      guest.write(d, (error) => {
        if (error) return
        this.up += d.length
        this.check()
      })
      if (guest.writableLength > this.maxBacklog) this.maxBacklog = guest.writableLength
    })
    guest.on("data", (d: Buffer) => {
      this.down += d.length
      c.fromGuest.feed(d)
      this.check()
    })
    guest.pipe(host)
    const end = (): void => {
      if (!joined && !c.closed) this.refused++
      c.closed = true
      host.destroy()
      guest.destroy()
      this.sockets.delete(host)
      this.sockets.delete(guest)
    }
    host.on("end", end).on("close", end).on("error", end)
    guest.on("close", end).on("error", end)
  }

  private toGuest(c: TapConnection, port: number, type: number, payload: Buffer): void {
    if (port === 1) trace(c, "→", type, payload)
    if (type === CLIENT_DISCONNECTED) for (const t of this.transfers.values()) if (t.connection === c.id) t.cancelled = true
    if (port !== 1) return
    if (type === CLIPBOARD) {
      // selection, type, data (CLIPBOARD_SELECTION: a 4-byte selection header first)
      const key = digest(payload)
      const n = (c.clipboards.get(key) ?? 0) + 1
      c.clipboards.set(key, n)
      const total = [...c.clipboards.values()].reduce((a, b) => a + b, 0)
      if (total > c.requests) this.problem("duplicated", `connection ${c.id}: CLIPBOARD ${key.slice(0, 12)} (${payload.length} B) handed ${n}× with ${c.requests} requests`)
      return
    }
    if (payload.length < 4) return
    const id = payload.readUInt32LE(0)
    if (type === FILE_XFER_START) {
      if (this.transfers.has(id)) this.problem("duplicated", `connection ${c.id}: FILE_XFER_START of file ${id} again (first on connection ${this.transfers.get(id)!.connection})`)
      else this.transfers.set(id, { connection: c.id, parts: [], blocks: new Set(), cancelled: false })
    } else if (type === FILE_XFER_DATA) {
      const t = this.transfers.get(id)
      if (t === undefined) return this.problem("stale", `connection ${c.id}: DATA of file ${id} with no START before it`)
      const data = payload.subarray(12)
      const key = digest(data)
      if (t.blocks.has(key)) this.problem("duplicated", `connection ${c.id}: a DATA block of file ${id} (${data.length} B at ${t.parts.reduce((s, p) => s + p.length, 0)}) handed again`)
      if (t.cancelled) this.problem("stale", `connection ${c.id}: DATA of file ${id} after its cancel`)
      if (t.connection !== c.id) this.problem("stale", `connection ${c.id}: DATA of file ${id} whose START went to connection ${t.connection}`)
      t.blocks.add(key)
      t.parts.push(Buffer.from(data))
    } else if (type === FILE_XFER_STATUS) {
      const t = this.transfers.get(id)
      if (t !== undefined) t.cancelled = true
    }
  }

  /** Transfer ids whose START was handed to the guest, in order. */
  transferIds(): number[] {
    return [...this.transfers.keys()]
  }

  /**
   * What the guest was handed of transfer `id` against the file: "exact", "prefix" (a clean beginning), or a
   * description of how it differs; and whether a cancel (or CLIENT_DISCONNECTED) followed.
   */
  transfer(id: number, file: Uint8Array): { readonly got: number; readonly shape: string; readonly cancelled: boolean; readonly connection: number } | undefined {
    const t = this.transfers.get(id)
    if (t === undefined) return undefined
    const got = Buffer.concat(t.parts)
    const want = Buffer.from(file.buffer, file.byteOffset, file.byteLength)
    const shape = got.equals(want) ? "exact" : got.length < want.length && got.equals(want.subarray(0, got.length)) ? "prefix" : `differs (${got.length} of ${want.length} B)`
    return { got: got.length, shape, cancelled: t.cancelled, connection: t.connection }
  }

  mark(): number {
    return this.problems.length
  }

  since(mark: number): Problem[] {
    return this.problems.slice(mark)
  }

  /** Resolves as soon as the `dir` counter reaches `at` (from inside the data handler). */
  when(dir: "up" | "down", at: number): Promise<void> {
    return new Promise((fire) => {
      this.watches.push({ dir, at, fire })
      this.check()
    })
  }

  private check(): void {
    if (this.watches.length === 0) return
    const due = this.watches.filter((w) => this[w.dir] >= w.at)
    if (due.length === 0) return
    this.watches = this.watches.filter((w) => this[w.dir] < w.at)
    for (const w of due) w.fire()
  }

  /** One line per connection: bytes each way, whole messages, bytes of a message left open at its end, the trace. */
  summary(from = 0): string[] {
    return this.connections
      .slice(from)
      .map((c) => `conn ${c.id}${c.closed ? " (closed)" : ""}: →guest ${c.toGuest.bytes} B ${c.toGuest.messages} msgs${c.toGuest.open > 0 ? `, ${c.toGuest.open} B of a message open` : ""}; ←guest ${c.fromGuest.bytes} B ${c.fromGuest.messages} msgs; ${c.trace.join(", ")}`)
  }

  private problem(kind: Problem["kind"], text: string): void {
    this.problems.push({ kind, text })
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((ok) => this.server.close(() => ok()))
    await rm(this.path, { force: true })
  }
}
