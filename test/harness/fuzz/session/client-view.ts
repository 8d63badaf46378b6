// A console as the fuzzers see it: receives every frame the actor sends to one client and checks the client-link rules
// the SDK depends on (DESIGN invariant 1): fragments only for an open seq, whole messages exactly their declared size,
// an abort only for a message partly received, nothing after the close; and it books the fate of every message id
// the console sent (acked, refused with a notice, or told to resend), so that a silent loss is visible.
import type { RelayToClient, Role } from "../../../../src/link/types.ts"
import { check } from "../engine.ts"
import { fnv } from "../reference.ts"

export interface Completed {
  readonly seq: number
  readonly type: number
  readonly hash: number
  readonly size: number
}

export class ClientView {
  role: Role = "viewer"
  welcomed = false
  closed = false
  readonly open = new Map<number, { type: number; size: number; got: number; hash: number }>()
  readonly completed: Completed[] = []
  /** What an SDK offers as `lastSeq`: every message up to it received whole, none after it half kept. */
  lastWholeSeq(): number {
    let last = this.lastSeq
    for (const seq of this.open.keys()) last = Math.min(last, seq - 1)
    return last
  }

  /** Highest seq ever completed: a lower one arriving again is a replay the SDK skips. */
  lastSeq = -1
  replays = 0
  aborts = 0
  /** Message id → what the relay said about it; ids in `pending` await an answer. */
  readonly answers = new Map<number, string[]>()
  readonly pending = new Set<number>()
  /** Ids sent while this console was a viewer (a write of one to the guest breaks invariant 4). */
  readonly sentAsViewer = new Set<number>()
  nextId = 1
  /** The message id this console is in the middle of sending, if any. */
  openOut: number | null = null
  /** Whole payloads of messages not yet answered: the SDK resends them on a resumed link. */
  readonly unanswered = new Map<number, { type: number; payload: Uint8Array }>()
  /** welcome.resume, and whether this link's welcome said the seat was resumed. */
  token = ""
  resumed = false
  /** Seqs the lost link this one resumed had half received. */
  readonly inheritedOpen = new Set<number>()
  /** The lastSeq this link resumed with: no message at or below it may start on it. */
  floor = -1
  /** Relay→client credit consumed since the last grant. */
  consumed = 0
  creditOwed = 0

  /** hello.origin: one per console (SDK session object), kept by the links that resume it. */
  origin: string

  constructor(readonly id: string, readonly maxRole: Role) {
    this.origin = `origin-${id}`
  }

  receive(f: RelayToClient): void {
    check(!this.closed || f.t === "error", `client ${this.id} got a ${f.t} frame after its link was closed`)
    check(this.welcomed || f.t === "welcome" || f.t === "error", `client ${this.id} got ${f.t} before welcome`)
    switch (f.t) {
      case "welcome":
        check(!this.welcomed, "a second welcome")
        this.welcomed = true
        this.role = f.role
        this.token = f.resume
        this.resumed = f.resumed === true
        return
      case "role":
        this.role = f.role
        return
      case "msg": {
        check(!this.open.has(f.seq), `msg ${f.seq} while message ${f.seq} is open (a torn message)`)
        check(f.seq > this.floor, `msg ${f.seq} at or below the lastSeq ${this.floor} this link resumed with`)
        this.consumed += f.data.length
        check(f.data.length <= f.size, `msg ${f.seq}: ${f.data.length} bytes of ${f.size}`)
        const m = { type: f.type, size: f.size, got: f.data.length, hash: fnv(f.data) }
        if (f.end) return this.complete(f.seq, m)
        this.open.set(f.seq, m)
        return
      }
      case "more": {
        const m = this.open.get(f.seq)
        check(m !== undefined, `more for seq ${f.seq}, which is not open`)
        this.consumed += f.data.length
        m!.got += f.data.length
        m!.hash = fnv(f.data, m!.hash)
        check(m!.got <= m!.size, `seq ${f.seq}: ${m!.got} bytes received, ${m!.size} declared`)
        // The relay may send the last bytes before it knows they are the last: an empty `more` with end follows.
        check(!f.end || m!.got === m!.size, `seq ${f.seq}: end at ${m!.got}/${m!.size}`)
        if (f.end) {
          this.open.delete(f.seq)
          this.complete(f.seq, m!)
        }
        return
      }
      case "abort":
        // A resumed link may hear the end of a message its lost predecessor had half received (the SDK ignores it).
        check(this.open.has(f.seq) || this.inheritedOpen.has(f.seq), `abort of seq ${f.seq}, which is not open`)
        this.open.delete(f.seq)
        this.aborts++
        return
      case "ack":
        return this.answer(f.id, "ack")
      case "notice":
        if (f.id !== undefined) this.answer(f.id, f.code)
        return
      case "credit":
        check(f.bytes > 0 && f.bytes <= this.creditOwed, `credit of ${f.bytes} returned, ${this.creditOwed} owed`)
        this.creditOwed -= f.bytes
        return
      case "error":
        this.closed = true
        return
      default:
        return
    }
  }

  private complete(seq: number, m: { type: number; size: number; got: number; hash: number }): void {
    check(m.got === m.size, `seq ${seq} completed with ${m.got} of ${m.size} bytes`)
    // Whole-stream rules: seqs in order (an SDK drops one at or below the last it saw), a replay is the same message.
    const before = seq <= this.lastSeq ? this.completed.find((c) => c.seq === seq) : undefined
    check(seq > this.lastSeq || before !== undefined, `seq ${seq} completed after seq ${this.lastSeq}: out of order (the SDK would drop it)`)
    if (before !== undefined) {
      check(before.hash === m.hash && before.type === m.type, `seq ${seq} delivered again with other content`)
      this.replays++
      return
    }
    this.lastSeq = Math.max(this.lastSeq, seq)
    this.completed.push({ seq, type: m.type, hash: m.hash, size: m.size })
  }

  /** A console that reuses an id starts a new message under it: its earlier answers no longer count. */
  sending(id: number): void {
    this.answers.delete(id)
    this.pending.add(id)
  }

  private answer(id: number, what: string): void {
    const list = this.answers.get(id) ?? []
    check(list.length === 0, `id ${id} answered ${what} after ${list.join(",")} (one answer per message)`)
    check(what !== "ack" || !this.sentAsViewer.has(id), `id ${id}, sent by a viewer, was written to the agent`)
    list.push(what)
    this.answers.set(id, list)
    this.pending.delete(id)
    if (what !== "resend") this.unanswered.delete(id)
  }
}
