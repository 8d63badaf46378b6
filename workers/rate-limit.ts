// The edge's rate limits (docs/security.md): WebSocket joins per VM and frames per link, as token buckets held in the
// VmSession's memory. An evicted object starts with full buckets, which can only make it briefly more lenient; volume
// is bounded elsewhere (credit, window, frame size), these bound the *count* of joins and frames a peer can make a VM's
// object handle, so one console cannot starve the others of the object's single thread.

export interface BucketSpec {
  /** Tokens available at once. */
  readonly burst: number
  /** Tokens added per second. */
  readonly perSecond: number
}

/**
 * New console links per VM: a whole office reconnecting after a relay restart (30 at once), then one a second. Bridge
 * links have their own, smaller bucket, so a console flood can never keep the agent's tunnel out.
 */
export const CONSOLE_JOINS: BucketSpec = { burst: 30, perSecond: 1 }
export const BRIDGE_JOINS: BucketSpec = { burst: 10, perSecond: 0.5 }
/**
 * Frames per link: far above what a console sends (pointer moves at display rate, 256 KiB fragments bounded by credit)
 * or a bridge (256 KiB data frames bounded by the window, one `wrote` per guest write), far below a ping flood.
 */
export const LINK_FRAMES: BucketSpec = { burst: 4000, perSecond: 2000 }

/**
 * The frames-per-link bucket from the `VDRELAY_LINK_FRAMES` var ("burst/perSecond", e.g. "4000/2000"), else
 * `LINK_FRAMES`. A malformed value falls back to the default rather than leaving links unlimited.
 */
export const linkFramesSpec = (setting: string | undefined): BucketSpec => {
  const m = /^\s*(\d+)\s*\/\s*(\d+(?:\.\d+)?)\s*$/.exec(setting ?? "")
  if (m === null) return LINK_FRAMES
  const burst = Number(m[1])
  const perSecond = Number(m[2])
  return burst >= 1 && perSecond > 0 ? { burst, perSecond } : LINK_FRAMES
}

export class TokenBucket {
  private tokens: number
  private at: number

  constructor(
    private readonly spec: BucketSpec,
    now: number,
  ) {
    this.tokens = spec.burst
    this.at = now
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.tokens = Math.min(this.spec.burst, this.tokens + ((now - this.at) / 1000) * this.spec.perSecond)
    this.at = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** Seconds until the next token (for Retry-After). */
  retryAfter(): number {
    return Math.max(1, Math.ceil((1 - this.tokens) / this.spec.perSecond))
  }
}

/** One bucket per link, dropped with the link (a WeakMap: links come and go, hibernation forgets them all). */
export class LinkLimiter {
  private readonly buckets = new WeakMap<object, TokenBucket>()

  constructor(private readonly spec: BucketSpec) {}

  allow(link: object, now: number): boolean {
    let b = this.buckets.get(link)
    if (b === undefined) this.buckets.set(link, (b = new TokenBucket(this.spec, now)))
    return b.take(now)
  }
}
