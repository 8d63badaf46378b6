// Client→relay direction of the client link: whole agent messages queued in order, cut into msg/more fragments only
// as far as the relay's byte credit allows, kept until the relay acks them, resent whole after a `resend` notice or
// a reconnect, and aborted cleanly when the caller gives one up half-sent.
import type { ClientToRelay, NoticeCode } from "../link/types.ts"
import type { MessageParts } from "../protocol/message-codec.ts"
import { ClientError, reasonForNotice } from "./errors.ts"

/** A payload as encoded fields and the caller's bytes, never joined: a fragment is a view, except one spanning both. */
class Payload {
  readonly length: number
  constructor(
    private readonly head: Uint8Array,
    private readonly body: Uint8Array,
  ) {
    this.length = head.length + body.length
  }

  /** Bytes `from` up to `to`: a view of the head or the body, or a copy of a range that spans both (≤ a fragment). */
  range(from: number, to: number): Uint8Array {
    const h = this.head.length
    if (from >= h) return this.body.subarray(from - h, to - h)
    if (to <= h) return this.head.subarray(from, to)
    const out = new Uint8Array(to - from)
    out.set(this.head.subarray(from), 0)
    out.set(this.body.subarray(0, to - h), h - from)
    return out
  }
}

export interface Outgoing {
  readonly id: number
  readonly type: number
  readonly payload: Payload
  /** Groups messages a caller may cancel together (e.g. one file transfer). */
  readonly group: string | undefined
  readonly resolve: () => void
  readonly reject: (err: ClientError) => void
  /** Given up while the relay held it whole: it waits for its answer but is never sent again (a `resend` fails it). */
  withdrawn?: ClientError
  /** The relay asked for it again (`resend`): if it is given up instead, the relay is told (`abort`), since it holds
   * back this console's later messages until it comes (per-sender order). */
  owed?: boolean
  /** Its first fragment went out before: a later attempt says `again` (link types). */
  sent?: boolean
}

export interface OutboxOptions {
  /** Largest fragment put in one WebSocket frame, bytes of message data. */
  readonly maxFragment: number
  readonly send: (frame: ClientToRelay) => void
  /**
   * Pointer priority: while the pointer moved in the last `pointerBusyMs`, at most this many bytes of messages are
   * left unreturned by the relay's credit (default 256 KiB), so a move queues behind less bulk data on the link; the
   * whole credit otherwise (a WAN transfer needs it: its rate is credit ÷ round trip). 0 turns it off.
   */
  readonly pointerBusyBytes?: number
  readonly pointerBusyMs?: number
  /** Milliseconds clock (default Date.now). */
  readonly now?: () => number
}

const NO_BYTES = new Uint8Array(0)
const POINTER_BUSY_BYTES = 256 * 1024
const POINTER_BUSY_MS = 100

export class Outbox {
  /** Not yet completely sent, in order; only the head may be partly sent (at `offset`). */
  private queue: Outgoing[] = []
  private offset = 0
  /** Completely sent, waiting for the relay's ack. */
  private readonly unacked = new Map<number, Outgoing>()
  private credit = 0
  private open = false
  private nextId = 1
  /** Bytes sent on this link whose credit has not come back (what a pointer move may queue behind). */
  private inFlight = 0
  private pointerAt = Number.NEGATIVE_INFINITY
  private pointerTimer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly opts: OutboxOptions) {}

  /** Bytes of messages in `group` not yet acked (what a file transfer counts against its window). */
  pendingBytes(group: string): number {
    let n = 0
    for (const m of this.queue) if (m.group === group) n += m.payload.length
    for (const m of this.unacked.values()) if (m.group === group) n += m.payload.length
    return n
  }

  get size(): number {
    return this.queue.length + this.unacked.size
  }

  /**
   * Queues a whole message; resolves when the relay acks it (handed whole towards the agent). Parts are sent as views:
   * the caller keeps their bytes unchanged until then.
   */
  enqueue(type: number, payload: Uint8Array | MessageParts, group?: string): Promise<void> {
    const p = payload instanceof Uint8Array ? new Payload(payload, NO_BYTES) : new Payload(payload.head, payload.body)
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, type, payload: p, group, resolve, reject })
      this.pump()
    })
  }

  /** A new link with its initial credit: everything not acked goes again, whole, in its original order. */
  linkOpened(credit: number): void {
    const again = [...this.unacked.values()]
    this.unacked.clear()
    for (const m of again) if (m.withdrawn !== undefined) m.reject(m.withdrawn)
    this.queue = [...again.filter((m) => m.withdrawn === undefined), ...this.queue].sort((a, b) => a.id - b.id)
    this.offset = 0
    this.credit = credit
    this.inFlight = 0
    this.open = true
    this.pump()
  }

  linkClosed(): void {
    this.open = false
    this.credit = 0
  }

  addCredit(bytes: number): void {
    this.credit += bytes
    this.inFlight = Math.max(0, this.inFlight - bytes)
    this.pump()
  }

  /** The console moved the pointer: bulk data yields to it for a while (OutboxOptions.pointerBusyBytes). */
  pointerMoved(): void {
    this.pointerAt = (this.opts.now ?? Date.now)()
  }

  /** Bytes that may go now: the credit, or less while the pointer is busy (then a timer pumps once it is not). */
  private room(): number {
    const cap = this.opts.pointerBusyBytes ?? POINTER_BUSY_BYTES
    if (cap <= 0) return this.credit
    const left = this.pointerAt + (this.opts.pointerBusyMs ?? POINTER_BUSY_MS) - (this.opts.now ?? Date.now)()
    if (left <= 0) return this.credit
    const room = Math.min(this.credit, cap - this.inFlight)
    if (room <= 0 && this.pointerTimer === undefined) {
      this.pointerTimer = setTimeout(() => {
        this.pointerTimer = undefined
        this.pump()
      }, Math.ceil(left))
    }
    return room
  }

  ack(id: number): Outgoing | undefined {
    const m = this.unacked.get(id)
    if (m === undefined) return undefined
    this.unacked.delete(id)
    m.resolve()
    return m
  }

  /** A notice about one of our messages: `resend` puts it back in the queue, anything else fails it. */
  notice(id: number, code: NoticeCode, detail: string): Outgoing | undefined {
    const m = this.unacked.get(id) ?? this.queue.find((q) => q.id === id)
    if (m === undefined) return undefined
    if (code === "resend" && m.withdrawn !== undefined) {
      this.unacked.delete(id)
      if (this.open) this.opts.send({ t: "abort", id })
      m.reject(m.withdrawn)
      return m
    }
    if (code === "resend") {
      m.owed = true
      if (!this.unacked.delete(id)) {
        // Half sent when the relay dropped it (the rest of this attempt would be discarded): restart it from byte 0.
        if (this.queue[0] === m && this.offset > 0) {
          if (this.open) this.opts.send({ t: "abort", id: m.id })
          this.offset = 0
          this.pump()
        }
        return m
      }
      // A later message half sent would reach the relay ahead of this one (a relay restart forgets which ids it asked
      // for again, so it cannot hold that one back): give it up, and send both again in id order.
      const head = this.queue[0]
      if (head !== undefined && this.offset > 0 && head.id > id) {
        if (this.open) this.opts.send({ t: "abort", id: head.id })
        this.offset = 0
      }
      const at = this.queue.findIndex((q) => q.id > id && !(q === this.queue[0] && this.offset > 0))
      this.queue.splice(at === -1 ? this.queue.length : at, 0, m)
      this.pump()
      return m
    }
    this.drop(m, new ClientError(reasonForNotice(code), detail, { notice: code }))
    return m
  }

  /**
   * Gives up every message matching `pred` that the relay does not hold whole yet (a half-sent one is aborted); those
   * it holds whole are withdrawn: still answered by the relay, never sent again.
   */
  cancel(pred: (m: Outgoing) => boolean, err: ClientError): void {
    for (const m of [...this.queue]) if (pred(m)) this.drop(m, err)
    for (const m of this.unacked.values()) if (pred(m)) m.withdrawn ??= err
  }

  /** Fails everything (session closed or role lost). */
  failAll(err: ClientError): void {
    for (const m of [...this.queue, ...this.unacked.values()]) this.drop(m, err)
  }

  private drop(m: Outgoing, err: ClientError): void {
    if (this.unacked.delete(m.id)) return m.reject(err)
    const at = this.queue.indexOf(m)
    if (at === -1) return
    const halfSent = at === 0 && this.offset > 0
    // A half-sent message is aborted; so is one the relay asked for again (it holds back what comes after it).
    if ((halfSent || m.owed === true) && this.open) this.opts.send({ t: "abort", id: m.id })
    if (halfSent) this.offset = 0
    this.queue.splice(at, 1)
    m.reject(err)
    this.pump()
  }

  private pump(): void {
    while (this.open && this.queue.length > 0) {
      const m = this.queue[0]!
      const remaining = m.payload.length - this.offset
      // Zero-length messages cost no credit; anything else waits for at least one byte of it.
      const room = remaining > 0 ? this.room() : 0
      if (remaining > 0 && room <= 0) return
      const n = Math.min(remaining, room, this.opts.maxFragment)
      const data = m.payload.range(this.offset, this.offset + n)
      const end = n === remaining
      this.opts.send(
        this.offset === 0
          ? { t: "msg", id: m.id, type: m.type, size: m.payload.length, data, end, ...(m.sent === true ? { again: true } : {}) }
          : { t: "more", id: m.id, data, end },
      )
      m.sent = true
      this.credit -= n
      this.inFlight += n
      this.offset += n
      if (end) {
        this.queue.shift()
        this.offset = 0
        this.unacked.set(m.id, m)
      }
    }
  }
}
