// The idempotence memory of one VM's bridge: which client messages, named (origin, id) by the relay's `write`, were
// written whole to the chardev. A resend after a relay restart (same epoch: the relay cannot know what the bridge
// wrote after its last `wrote`) is then not written again. Held for the process lifetime, across epochs, bounded.

/** Ids remembered per origin; older ones fold into the floor. */
const IDS_PER_ORIGIN = 4096
/** Origins remembered (least recently written first out): a VM has a handful of consoles over a bridge's life. */
const ORIGINS = 64

interface OriginIds {
  /** Every id at or below it counts as written: folded from the set when it outgrew IDS_PER_ORIGIN. */
  floor: number
  readonly ids: Set<number>
}

export class WrittenKeys {
  /** Insertion order is recency: a written origin is moved to the end. */
  private readonly origins = new Map<string, OriginIds>()

  constructor(
    private readonly idsPerOrigin = IDS_PER_ORIGIN,
    private readonly maxOrigins = ORIGINS,
  ) {}

  /**
   * Whether (origin, id) was written whole. An id below the floor counts as written: at-most-once is the promise the
   * bridge keeps when its memory runs short (an SDK resends only its unacknowledged tail, thousands of ids above it).
   */
  has(origin: string, id: number): boolean {
    const o = this.origins.get(origin)
    return o !== undefined && (id <= o.floor || o.ids.has(id))
  }

  /** (origin, id) was written whole to the chardev. */
  add(origin: string, id: number): void {
    let o = this.origins.get(origin)
    if (o === undefined) o = { floor: -1, ids: new Set() }
    else this.origins.delete(origin)
    this.origins.set(origin, o)
    if (id > o.floor) o.ids.add(id)
    if (o.ids.size > this.idsPerOrigin) this.fold(o)
    if (this.origins.size > this.maxOrigins) this.origins.delete(this.origins.keys().next().value!)
  }

  get size(): number {
    return this.origins.size
  }

  /** Raises the floor to the oldest half of the ids (ids are monotonic per origin, so these are the oldest). */
  private fold(o: OriginIds): void {
    const sorted = [...o.ids].sort((a, b) => a - b)
    const floor = sorted[Math.floor(sorted.length / 2)]!
    o.floor = floor
    for (const id of sorted) {
      if (id > floor) break
      o.ids.delete(id)
    }
  }
}
