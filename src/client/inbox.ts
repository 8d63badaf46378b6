// Relay→client direction of the client link: reassembles fragmented agent messages (msg/more/abort) into whole ones,
// drops duplicates after a resume (by seq), and grants the relay credit in bytes as fragments are consumed.
import type { NoticeCode, RelayToClient } from "../link/types.ts"

/** One whole agent message as the relay delivered it, not decoded (`type` and payload bytes). */
export interface RawAgentMessage {
  readonly seq: number
  readonly type: number
  readonly data: Uint8Array
}

export type InboxResult =
  | { readonly _tag: "Message"; readonly message: RawAgentMessage }
  /**
   * A message over the size cap was dropped: told, never silent. `head`: its first payload bytes (up to HEAD_BYTES), so
   * that what waited for it (a clipboard request, by the selection its payload starts with) can be settled.
   */
  | { readonly _tag: "Dropped"; readonly seq: number; readonly type: number | undefined; readonly reason: string; readonly head: Uint8Array }
  /** The relay gave up a message it had half sent (`abort`): what arrived of it is dropped, told with its code. */
  | { readonly _tag: "Aborted"; readonly seq: number; readonly type: number; readonly code: NoticeCode; readonly head: Uint8Array }
  | { readonly _tag: "Protocol"; readonly detail: string }

/** Payload bytes kept of a message that is skipped or aborted: enough for a clipboard message's selection. */
export const HEAD_BYTES = 8

/** A message arriving in fragments. */
interface Arriving {
  readonly type: number
  /** Its first payload bytes, up to HEAD_BYTES (all a skipped message keeps). */
  readonly head: Uint8Array
  /** undefined while the message is being skipped (duplicate or over the cap): fragments are consumed, not kept. */
  readonly buf: Uint8Array | undefined
  fill: number
  readonly size: number
}

type Fragment = Extract<RelayToClient, { t: "msg" | "more" | "abort" }>

export class Inbox {
  private readonly partial = new Map<number, Arriving>()
  /** Highest seq delivered whole (or deliberately skipped); -1 before any. */
  private delivered = -1
  private consumed = 0

  constructor(
    private readonly maxMessageBytes: number,
    /** Relay→client credit kept outstanding, bytes. */
    readonly window: number,
    private readonly grant: (bytes: number) => void,
  ) {}

  /** The seq to resume after: every message up to it was seen whole, none after it is half kept. */
  get lastSeq(): number {
    let last = this.delivered
    for (const seq of this.partial.keys()) last = Math.min(last, seq - 1)
    return last
  }

  /** A new link: partial messages are gone with the old one (the relay resends from lastSeq), credit starts afresh. */
  linkOpened(): void {
    this.partial.clear()
    this.consumed = 0
    this.grant(this.window)
  }

  /** The relay session changed: its seqs are not comparable with the ones seen so far. */
  forgetSeqs(): void {
    this.delivered = -1
  }

  push(frame: Fragment): InboxResult | undefined {
    switch (frame.t) {
      case "msg":
        this.spend(frame.data.length)
        return this.start(frame)
      case "more": {
        this.spend(frame.data.length)
        const p = this.partial.get(frame.seq)
        if (p === undefined) return frame.seq <= this.delivered ? undefined : { _tag: "Protocol", detail: `fragment of unknown message ${frame.seq}` }
        return this.append(frame.seq, p, frame.data, frame.end)
      }
      case "abort": {
        const p = this.partial.get(frame.seq)
        this.partial.delete(frame.seq)
        // A message skipped as a duplicate was delivered before; one skipped as too large was reported as Dropped.
        return p === undefined || p.buf === undefined ? undefined : { _tag: "Aborted", seq: frame.seq, type: p.type, code: frame.reason, head: headOf(p) }
      }
    }
  }

  private start(f: Extract<Fragment, { t: "msg" }>): InboxResult | undefined {
    if (f.seq <= this.delivered || this.partial.has(f.seq)) {
      // A duplicate replayed after a resume: consume it without delivering it twice.
      if (!f.end && !this.partial.has(f.seq)) this.partial.set(f.seq, { type: f.type, head: new Uint8Array(0), buf: undefined, fill: 0, size: f.size })
      return undefined
    }
    if (f.end && f.data.length === f.size && f.size <= this.maxMessageBytes) return this.done(f.seq, f.type, f.data)
    if (f.size > this.maxMessageBytes) {
      if (f.end && f.data.length === f.size) {
        // Whole in one frame but over the cap: dropped and reported like a fragmented one (and not replayed later).
        this.delivered = Math.max(this.delivered, f.seq)
        return { _tag: "Dropped", seq: f.seq, type: f.type, reason: `message of ${f.size} bytes exceeds maxMessageBytes ${this.maxMessageBytes}`, head: f.data.slice(0, HEAD_BYTES) }
      }
      this.partial.set(f.seq, { type: f.type, head: f.data.slice(0, HEAD_BYTES), buf: undefined, fill: f.data.length, size: f.size })
      return f.end
        ? { _tag: "Protocol", detail: `message ${f.seq} ends at ${f.data.length} of ${f.size} bytes` }
        : { _tag: "Dropped", seq: f.seq, type: f.type, reason: `message of ${f.size} bytes exceeds maxMessageBytes ${this.maxMessageBytes}`, head: f.data.slice(0, HEAD_BYTES) }
    }
    const p: Arriving = { type: f.type, head: new Uint8Array(0), buf: new Uint8Array(f.size), fill: 0, size: f.size }
    this.partial.set(f.seq, p)
    return this.append(f.seq, p, f.data, f.end)
  }

  private append(seq: number, p: Arriving, data: Uint8Array, end: boolean): InboxResult | undefined {
    if (p.fill + data.length > p.size) {
      this.partial.delete(seq)
      return { _tag: "Protocol", detail: `message ${seq} overflows its size ${p.size}` }
    }
    p.buf?.set(data, p.fill)
    p.fill += data.length
    if (!end) return undefined
    this.partial.delete(seq)
    if (p.fill !== p.size) return { _tag: "Protocol", detail: `message ${seq} ends at ${p.fill} of ${p.size} bytes` }
    if (p.buf === undefined) {
      this.delivered = Math.max(this.delivered, seq)
      return undefined
    }
    return this.done(seq, p.type, p.buf)
  }

  private done(seq: number, type: number, data: Uint8Array): InboxResult {
    this.delivered = Math.max(this.delivered, seq)
    return { _tag: "Message", message: { seq, type, data } }
  }

  /** Returns credit in batches of half the window, so the relay never waits for a round trip per fragment. */
  private spend(bytes: number): void {
    this.consumed += bytes
    if (this.consumed >= this.window / 2) {
      const n = this.consumed
      this.consumed = 0
      this.grant(n)
    }
  }
}

/** The first payload bytes that arrived of a partial message. */
const headOf = (p: Arriving): Uint8Array => (p.buf === undefined ? p.head : p.buf.slice(0, Math.min(p.fill, HEAD_BYTES)))
