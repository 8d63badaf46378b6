// A loopback TCP forwarder whose connections can be cut at any moment (a network drop with no close frame), counting
// the bytes it carries each way so a fault can be timed to land in the middle of a message.
import net from "node:net"

export class CutProxy {
  private readonly pairs = new Set<readonly [net.Socket, net.Socket]>()
  /** Bytes forwarded towards the target (up) and back (down) since start. */
  up = 0
  down = 0
  cuts = 0
  private watches: Array<{ readonly dir: "up" | "down"; readonly at: number; readonly fire: () => void }> = []

  private constructor(private readonly server: net.Server) {}

  static async start(targetPort: number): Promise<CutProxy> {
    const server = net.createServer()
    const proxy = new CutProxy(server)
    server.on("connection", (a) => {
      const b = net.connect(targetPort, "127.0.0.1")
      const pair = [a, b] as const
      proxy.pairs.add(pair)
      a.on("data", (d: Buffer) => {
        proxy.up += d.length
        b.write(d)
        proxy.check()
      })
      b.on("data", (d: Buffer) => {
        proxy.down += d.length
        a.write(d)
        proxy.check()
      })
      const end = (): void => {
        a.destroy()
        b.destroy()
        proxy.pairs.delete(pair)
      }
      a.on("close", end).on("error", end)
      b.on("close", end).on("error", end)
    })
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", () => ok()))
    return proxy
  }

  /**
   * Resolves as soon as the `dir` counter reaches `at`, from inside the data handler: a fault injected then lands
   * between two reads of the stream, not tens of milliseconds (megabytes) later.
   */
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

  get port(): number {
    return (this.server.address() as net.AddressInfo).port
  }

  get connections(): number {
    return this.pairs.size
  }

  /** Destroys every connection at once: both peers see a reset, as on a network failure. */
  cut(): void {
    this.cuts++
    for (const [a, b] of this.pairs) {
      a.destroy()
      b.destroy()
    }
  }

  close(): Promise<void> {
    this.cut()
    return new Promise((ok) => this.server.close(() => ok()))
  }
}
