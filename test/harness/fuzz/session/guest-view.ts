// The guest side of the bridge link as the fuzzers see it: every `write`/`abort` the actor sends, checked the way the
// bridge and the agent would take them (DESIGN invariant 1): positions contiguous per epoch, each port's bytes form
// VDIChunks of ≤ 2048 payload bytes, and each `end` completes exactly one whole message (an `abort` drops a partial).
import type { RelayToBridge } from "../../../../src/link/types.ts"
import { check } from "../engine.ts"
import { concat } from "../gen-messages.ts"
import { referenceParse, u32le } from "../reference.ts"

export interface GuestMessage {
  readonly port: number
  readonly type: number
  readonly size: number
  readonly payload: Uint8Array
  /** The key its first write named (client messages). */
  readonly key?: { readonly origin: string; readonly id: number }
}

export class GuestView {
  epoch = -1
  /** Next guest-bound position expected in `epoch`. */
  wpos = 0
  private readonly partial = new Map<number, Uint8Array[]>()
  readonly messages: GuestMessage[] = []
  aborted = 0
  /** Keyed messages not written again, as the bridge does (src/bridge/written-keys.ts): across epochs and restarts. */
  suppressed = 0
  private readonly writtenKeys = new Set<string>()
  private readonly portKey = new Map<number, { origin: string; id: number }>()

  /** The relay (re)starts the guest-bound stream of `epoch` at `pos` (welcome after hello, restore). */
  reset(epoch: number, pos: number): void {
    this.epoch = epoch
    this.wpos = pos
    this.partial.clear()
    this.portKey.clear()
  }

  receive(f: Extract<RelayToBridge, { t: "write" | "abort" }>): void {
    check(f.epoch === this.epoch, `${f.t} for epoch ${f.epoch}, the link is in epoch ${this.epoch}`)
    check(f.pos === this.wpos, `${f.t} at ${f.pos}, expected ${this.wpos} (positions must be contiguous)`)
    check(f.port === 1 || f.port === 2, `${f.t} for port ${f.port}`)
    if (f.t === "abort") {
      this.partial.delete(f.port)
      this.portKey.delete(f.port)
      this.aborted++
      return
    }
    if (!this.partial.has(f.port)) {
      if (f.origin !== undefined && f.id !== undefined) this.portKey.set(f.port, { origin: f.origin, id: f.id })
      else this.portKey.delete(f.port)
    } else check(f.origin === undefined && f.id === undefined, `a write in the middle of a port-${f.port} message names a message`)
    this.wpos += f.data.length
    const parts = this.partial.get(f.port) ?? []
    parts.push(f.data.slice())
    if (!f.end) {
      this.partial.set(f.port, parts)
      return
    }
    this.partial.delete(f.port)
    const bytes = concat(parts)
    const r = referenceParse(bytes, { maxChunk: 2048, maxMessage: 0xffff_ffff, ports: [f.port] })
    check(r.errorChunkAt === undefined, `guest-bound bytes on port ${f.port} break the chunk rules: ${r.events.at(-1)}`)
    check(r.events.length === 2 && r.events[1]!.startsWith("E"), `an end on port ${f.port} completes ${r.events.length / 2} messages`)
    check(u32le(bytes, 4) >= 20, `the first chunk of a guest-bound message holds ${u32le(bytes, 4)} bytes, less than its header`)
    const type = u32le(bytes, 12)
    const size = u32le(bytes, 24)
    const payload = new Uint8Array(size)
    for (let at = 0, o = 0, first = true; at < bytes.length; first = false) {
      const n = u32le(bytes, at + 4)
      const body = bytes.subarray(at + 8 + (first ? 20 : 0), at + 8 + n)
      payload.set(body, o)
      o += body.length
      at += 8 + n
    }
    const key = this.portKey.get(f.port)
    this.portKey.delete(f.port)
    if (key !== undefined) {
      const k = `${key.origin}\0${key.id}`
      if (this.writtenKeys.has(k)) {
        this.suppressed++
        return
      }
      this.writtenKeys.add(k)
    }
    this.messages.push({ port: f.port, type, size, payload, ...(key === undefined ? {} : { key }) })
  }

  /** Bytes of a message half written on some port (the bridge would hold them). */
  get partialPorts(): number[] {
    return [...this.partial.keys()]
  }
}
