// The unacknowledged tail of the agent byte stream of one epoch: bytes [from, end) kept for replay after a tunnel blip.

export class AgentTail {
  /** Retained pieces in stream order; `starts[i]` is the stream position of `pieces[i]`'s first byte. */
  private pieces: Array<Uint8Array> = []
  private starts: Array<number> = []
  /** Oldest position still retained (everything below it was acknowledged by the relay). */
  from = 0
  /** Position after the last byte read from the chardev. */
  end = 0

  get retained(): number {
    return this.end - this.from
  }

  /** Takes ownership of `bytes` (the caller must not reuse the memory). */
  append(bytes: Uint8Array): void {
    if (bytes.length === 0) return
    this.pieces.push(bytes)
    this.starts.push(this.end)
    this.end += bytes.length
  }

  /** Forgets everything below `pos` (from ≤ pos ≤ end). */
  release(pos: number): void {
    if (pos <= this.from) return
    if (pos > this.end) throw new RangeError(`release(${pos}) beyond end ${this.end}`)
    let drop = 0
    while (drop < this.pieces.length && this.starts[drop]! + this.pieces[drop]!.length <= pos) drop++
    if (drop > 0) {
      this.pieces.splice(0, drop)
      this.starts.splice(0, drop)
    }
    const first = this.pieces[0]
    if (first !== undefined && this.starts[0]! < pos) {
      this.pieces[0] = first.subarray(pos - this.starts[0]!)
      this.starts[0] = pos
    }
    this.from = pos
  }

  /** A view of at most `max` bytes starting at `pos` (from ≤ pos < end); never spans two pieces, so never copies. */
  slice(pos: number, max: number): Uint8Array {
    if (pos < this.from || pos >= this.end) throw new RangeError(`slice(${pos}) outside [${this.from}, ${this.end})`)
    let lo = 0
    let hi = this.pieces.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (this.starts[mid]! <= pos) lo = mid
      else hi = mid - 1
    }
    const piece = this.pieces[lo]!
    const at = pos - this.starts[lo]!
    return piece.subarray(at, Math.min(piece.length, at + max))
  }

  /** Starts a new epoch: positions restart at 0 and the old tail is dropped. */
  reset(): void {
    this.pieces = []
    this.starts = []
    this.from = 0
    this.end = 0
  }
}
