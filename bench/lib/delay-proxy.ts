// A loopback TCP proxy that delays every byte by a fixed time in each direction, preserving order: a WAN link's
// latency (not its bandwidth) put in front of any TCP service, e.g. 25 ms each way for a 50 ms round trip.
import { type AddressInfo, type Server, type Socket, connect, createServer } from "node:net"
import { now } from "./stats.ts"

export type Target = { readonly host: string; readonly port: number } | { readonly path: string }

export interface DelayProxyOptions {
  readonly target: Target
  /** Added one-way delay, ms (applied to both directions). */
  readonly delayMs: number
  /** Bytes held per direction before the proxy stops reading that side (bounded memory; default 256 MiB). */
  readonly maxQueuedBytes?: number
}

export interface DelayProxyStats {
  /** Bytes forwarded, per direction. */
  upBytes: number
  downBytes: number
  /** How late deliveries were against their due time (ms): the proxy's own timer error. */
  lateMsSum: number
  lateMsMax: number
  deliveries: number
}

export interface DelayProxy {
  readonly port: number
  readonly stats: DelayProxyStats
  close(): Promise<void>
}

/** One direction: bytes wait in a FIFO until their due time, then go out in order; a full socket delays the rest. */
class DelayLine {
  private readonly queue: Array<{ due: number; bytes: Buffer }> = []
  private head = 0
  private queued = 0
  private timer: NodeJS.Timeout | undefined
  private blocked = false
  private ended = false

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly delayMs: number,
    private readonly maxQueued: number,
    private readonly stats: DelayProxyStats,
    private readonly count: (n: number) => void,
  ) {
    from.on("data", (b: Buffer) => {
      this.queue.push({ due: now() + delayMs, bytes: b })
      this.queued += b.length
      if (this.queued > maxQueued) from.pause()
      this.arm()
    })
    from.on("end", () => {
      this.ended = true
      this.arm()
    })
    to.on("drain", () => {
      this.blocked = false
      this.flush()
    })
  }

  private arm(): void {
    if (this.timer !== undefined || this.blocked) return
    if (this.head === this.queue.length) {
      if (this.ended) this.to.end()
      return
    }
    const wait = this.queue[this.head]!.due - now()
    if (wait <= 0) return this.flush()
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.flush()
    }, wait)
  }

  private flush(): void {
    const t = now()
    while (this.head < this.queue.length && !this.blocked) {
      const item = this.queue[this.head]!
      if (item.due > t) break
      this.queue[this.head++] = undefined as never
      const late = t - item.due
      this.stats.lateMsSum += late
      this.stats.lateMsMax = Math.max(this.stats.lateMsMax, late)
      this.stats.deliveries++
      this.count(item.bytes.length)
      this.queued -= item.bytes.length
      if (!this.to.write(item.bytes)) this.blocked = true
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    if (this.queued <= this.maxQueued / 2 && this.from.isPaused()) this.from.resume()
    this.arm()
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

const listen = (server: Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  })

export const startDelayProxy = async (opts: DelayProxyOptions): Promise<DelayProxy> => {
  const stats: DelayProxyStats = { upBytes: 0, downBytes: 0, lateMsSum: 0, lateMsMax: 0, deliveries: 0 }
  const maxQueued = opts.maxQueuedBytes ?? 256 * 1024 * 1024
  const sockets = new Set<Socket>()
  const lines = new Set<DelayLine>()
  // Half-open on both sides: an end is forwarded only after the bytes queued before it, as a real link would.
  const server = createServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, (client) => {
    const upstream = "path" in opts.target
      ? connect({ path: opts.target.path, allowHalfOpen: true })
      : connect({ ...opts.target, noDelay: true, allowHalfOpen: true })
    sockets.add(client).add(upstream)
    const up = new DelayLine(client, upstream, opts.delayMs, maxQueued, stats, (n) => (stats.upBytes += n))
    const down = new DelayLine(upstream, client, opts.delayMs, maxQueued, stats, (n) => (stats.downBytes += n))
    lines.add(up).add(down)
    const teardown = (): void => {
      up.stop()
      down.stop()
      lines.delete(up)
      lines.delete(down)
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    // A reset on either side resets the other; once both sockets are closed cleanly, only bookkeeping is left.
    client.on("error", teardown)
    upstream.on("error", teardown)
    client.on("close", () => upstream.closed && teardown())
    upstream.on("close", () => client.closed && teardown())
    upstream.once("connect", () => client.resume())
  })
  const port = await listen(server)
  return {
    port,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const l of lines) l.stop()
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
