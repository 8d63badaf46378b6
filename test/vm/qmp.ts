// A QMP client for tests: greeting, qmp_capabilities, `execute`, and every event kept in order so a test can wait for
// one that came after a mark. Its own monitor socket (qemu.ts gives the VM two), so a bridge under test can hold the
// other: QEMU serves one client per monitor.
import { connect, type Socket } from "node:net"

export type Json = Record<string, unknown>

export interface QmpEvent {
  readonly event: string
  readonly data: Json
  /** Date.now() when it arrived (QEMU's own timestamp is in `timestamp`). */
  readonly at: number
  readonly timestamp: { seconds: number; microseconds: number } | undefined
}

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`)
    this.name = "QmpError"
  }
}

export class Qmp {
  /** Every event received, in order. */
  readonly events: QmpEvent[] = []
  /** Called with each event as it arrives (after it is added to `events`). */
  onEvent: (e: QmpEvent) => void = () => {}
  private buffer = ""
  private nextId = 1
  private readonly pending = new Map<number, { command: string; ok: (v: unknown) => void; err: (e: Error) => void }>()
  private readonly waiters = new Set<() => void>()
  private closedError: Error | undefined

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8")
    socket.on("data", (s: string) => this.feed(s))
    socket.on("error", () => {})
    socket.on("close", () => {
      this.closedError = new Error("QMP connection closed")
      for (const p of this.pending.values()) p.err(this.closedError)
      this.pending.clear()
      for (const w of [...this.waiters]) w()
    })
  }

  /** Connects (retrying while QEMU has not created the socket yet), reads the greeting, negotiates capabilities. */
  static async connect(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path)
          s.once("connect", () => resolve(s))
          s.once("error", reject)
        })
        const qmp = new Qmp(socket)
        await qmp.greeted(Math.max(1000, deadline - Date.now()))
        await qmp.execute("qmp_capabilities")
        return qmp
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`QMP at ${path}: ${(e as Error).message}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  get closed(): boolean {
    return this.closedError !== undefined
  }

  execute<T = unknown>(command: string, args?: Json): Promise<T> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError)
    const id = this.nextId++
    return new Promise<T>((ok, err) => {
      this.pending.set(id, { command, ok: ok as (v: unknown) => void, err })
      this.socket.write(`${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`)
    })
  }

  /** Index to pass as `from` so a later wait only sees events after now. */
  mark(): number {
    return this.events.length
  }

  /** The first event named `name` at or after index `from` that `where` accepts; rejects after `timeoutMs`. */
  waitForEvent(name: string, opts: { from?: number; where?: (data: Json) => boolean; timeoutMs?: number } = {}): Promise<QmpEvent> {
    const from = opts.from ?? 0
    const find = (): QmpEvent | undefined => this.events.slice(from).find((e) => e.event === name && (opts.where?.(e.data) ?? true))
    const hit = find()
    if (hit !== undefined) return Promise.resolve(hit)
    return new Promise<QmpEvent>((resolve, reject) => {
      const check = (): void => {
        const e = find()
        if (e === undefined && this.closedError === undefined) return
        clearTimeout(timer)
        this.waiters.delete(check)
        if (e !== undefined) resolve(e)
        else reject(new Error(`QMP closed while waiting for ${name}`))
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`no QMP event ${name} within ${opts.timeoutMs ?? 15_000} ms (seen: ${this.events.slice(from).map((e) => e.event).join(", ")})`))
      }, opts.timeoutMs ?? 15_000)
      this.waiters.add(check)
    })
  }

  /** `frontend-open` of chardev `label` (query-chardev): whether the guest has that port open right now (spec §12). */
  async frontendOpen(label: string): Promise<boolean | undefined> {
    const list = await this.execute<Array<{ label: string; "frontend-open"?: boolean }>>("query-chardev")
    return list.find((c) => c.label === label)?.["frontend-open"]
  }

  close(): void {
    this.socket.destroy()
  }

  private greetingSeen = false
  private greeted(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!this.greetingSeen && this.closedError === undefined) return
        clearTimeout(timer)
        this.waiters.delete(check)
        if (this.greetingSeen) resolve()
        else reject(this.closedError)
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        this.socket.destroy()
        reject(new Error(`no QMP greeting within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.add(check)
      check()
    })
  }

  private feed(s: string): void {
    this.buffer += s
    let nl: number
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl).trim()
      this.buffer = this.buffer.slice(nl + 1)
      if (line !== "") this.line(JSON.parse(line) as Json)
    }
  }

  private line(m: Json): void {
    if ("QMP" in m) this.greetingSeen = true
    else if (typeof m.event === "string") {
      const ts = m.timestamp as QmpEvent["timestamp"]
      const e: QmpEvent = { event: m.event, data: (m.data as Json | undefined) ?? {}, at: Date.now(), timestamp: ts }
      this.events.push(e)
      this.onEvent(e)
    } else if (typeof m.id === "number") {
      const p = this.pending.get(m.id)
      if (p === undefined) return
      this.pending.delete(m.id)
      if ("error" in m) {
        const e = m.error as Json
        p.err(new QmpError(p.command, String(e.class), String(e.desc)))
      } else p.ok(m.return)
    }
    for (const w of [...this.waiters]) w()
  }
}
