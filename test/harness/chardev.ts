// An emulated QEMU `-chardev socket,server=on` in front of a virtserialport (spec §11, §12): spice-vdagentd connects
// to the "guest" socket as if it were /dev/virtio-ports/com.redhat.spice.0, a bridge or test connects to the "host"
// socket, and bytes are copied both ways with QEMU's gating and hand-over rules, plus hooks for fault injection.
import { EventEmitter } from "node:events"
import { rmSync } from "node:fs"
import { type Server, type Socket, createServer } from "node:net"

export interface ChardevCounters {
  /** Connections the daemon made to the guest socket (its first open and every reopen). */
  guestConnections: number
  /** Host connections that became the active one. */
  hostConnections: number
  hostToGuestBytes: number
  guestToHostBytes: number
  /** Guest connections closed because the active host left (the daemon then sees EOF and reopens). */
  guestClosedOnHostLeave: number
  /** Guest connections closed through `closeGuest()`. */
  guestClosedByHook: number
  /** Host connections dropped through `dropHost()`. */
  hostDroppedByHook: number
  /** Host bytes read while no guest had the port open: held for the next opener, as QEMU holds them. */
  hostBytesHeld: number
  /** Held host bytes handed to a later opener: stale bytes, written before that opener opened the port. */
  heldBytesDelivered: number
  /** Held host bytes dropped because their host left before the next open (QEMU drops them too). */
  heldBytesDropped: number
}

export interface ChardevEvents {
  "guest-open": []
  "guest-close": [reason: "guest" | "host-left" | "hook" | "replaced"]
  "host-open": []
  "host-close": [reason: "host" | "hook"]
  /** A new opener was handed `bytes` held host bytes before anything else. */
  "held-delivered": [bytes: number]
  /** Host bytes handed to guest connection number `connection` (counters.guestConnections when it opened). */
  "to-guest": [bytes: Buffer, connection: number]
}

/**
 * QEMU's rules, as observed (spec §12), and where this emulation has to differ:
 * - While no host is connected, guest bytes are not read: they wait (QEMU blocks the guest's write) and the next host
 *   gets them. While no guest has the port open, QEMU does not read host bytes: they wait in the socket and the NEXT
 *   opener reads them first, in order (stale bytes); if their host disconnects before that open, they are gone. Here
 *   they are read into a queue instead (without QEMU's ~200 KB bound, so that the host's hang-up is seen at once, as
 *   QEMU's HUP watch sees it) with the same outcome: handed to the next opener, or dropped when their host leaves.
 * - A second host connection waits, unread, until the active one leaves, and is then accepted at once.
 * - When the active host leaves, the guest must see a lost connection. QEMU keeps the guest fd and makes read()
 *   return 0; a socket cannot do that and then carry data again, so the guest connection is closed instead, and
 *   spice-vdagentd reopens its port and resets its parsers, which is what it does under QEMU. Exception: if no host
 *   byte has reached this guest connection yet, the daemon is still in its "opening" state, where it retries a 0-byte
 *   read every 10 ms forever instead of reopening (vdagent-connection.c); there the connection is kept, as QEMU keeps it.
 * - When the daemon itself closes the port (an error, a restart), host bytes already copied to the dying connection
 *   are lost (under QEMU the guest kernel drops what the opener had not read); host bytes not yet copied wait for the
 *   next opener, as above.
 */
export class EmulatedChardev extends EventEmitter<ChardevEvents> {
  readonly counters: ChardevCounters = {
    guestConnections: 0,
    hostConnections: 0,
    hostToGuestBytes: 0,
    guestToHostBytes: 0,
    guestClosedOnHostLeave: 0,
    guestClosedByHook: 0,
    hostDroppedByHook: 0,
    hostBytesHeld: 0,
    heldBytesDelivered: 0,
    heldBytesDropped: 0,
  }
  private guest: Socket | undefined
  private guestDelivered = 0
  private host: Socket | undefined
  /** Host bytes read while no guest had the port open, for the next opener. */
  private held: Buffer[] = []
  private readonly waitingHosts: Socket[] = []
  private readonly hostCloseReason = new WeakMap<Socket, "hook">()
  private closed = false

  private constructor(
    readonly guestPath: string,
    readonly hostPath: string,
    private readonly guestServer: Server,
    private readonly hostServer: Server,
  ) {
    super()
    // pauseOnConnect: nothing is read from a new connection until it is paired with a peer.
    guestServer.on("connection", (s) => this.onGuest(s))
    hostServer.on("connection", (s) => this.onHost(s))
  }

  static async listen(opts: { guestPath: string; hostPath: string }): Promise<EmulatedChardev> {
    const guestServer = createServer({ pauseOnConnect: true })
    const hostServer = createServer({ pauseOnConnect: true })
    await listenOn(guestServer, opts.guestPath)
    try {
      await listenOn(hostServer, opts.hostPath)
    } catch (e) {
      guestServer.close()
      throw e
    }
    return new EmulatedChardev(opts.guestPath, opts.hostPath, guestServer, hostServer)
  }

  get guestConnected(): boolean {
    return this.guest !== undefined
  }

  get hostConnected(): boolean {
    return this.host !== undefined
  }

  get hostsWaiting(): number {
    return this.waitingHosts.length
  }

  /** Resolves when the guest connection count exceeds `count` (default: the current count) and a guest is connected. */
  async waitForGuest(count = this.counters.guestConnections, timeoutMs = 15_000): Promise<void> {
    if (this.counters.guestConnections > count && this.guest !== undefined) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("guest-open", check)
        reject(new Error(`chardev: no guest (re)connection within ${timeoutMs} ms`))
      }, timeoutMs)
      const check = (): void => {
        if (this.counters.guestConnections <= count) return
        clearTimeout(timer)
        this.off("guest-open", check)
        resolve()
      }
      this.on("guest-open", check)
    })
  }

  /** Fault injection: the host side drops (bridge crash, network loss). The guest sees it as QEMU would show it. */
  dropHost(): void {
    if (this.host === undefined) return
    this.counters.hostDroppedByHook++
    this.hostCloseReason.set(this.host, "hook")
    this.host.destroy()
  }

  /** Fault injection: the guest closes its port (VM reboot, daemon gone). The host connection stays, as in QEMU. */
  closeGuest(): void {
    if (this.guest === undefined) return
    this.counters.guestClosedByHook++
    this.retireGuest("hook")
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const s of [this.guest, this.host, ...this.waitingHosts]) s?.destroy()
    this.waitingHosts.length = 0
    await Promise.all([closeServer(this.guestServer), closeServer(this.hostServer)])
    for (const p of [this.guestPath, this.hostPath]) rmSync(p, { force: true })
  }

  private onGuest(s: Socket): void {
    if (this.closed) return void s.destroy()
    // The daemon has one port open at a time; a new open replaces whatever is left of the old one.
    if (this.guest !== undefined) this.retireGuest("replaced")
    this.guest = s
    this.guestDelivered = 0
    this.counters.guestConnections++
    s.on("data", (b: Buffer) => {
      this.counters.guestToHostBytes += b.length
      if (this.host !== undefined && !this.host.write(b)) {
        s.pause()
        this.host.once("drain", () => this.flow())
      }
    })
    s.on("error", () => {})
    s.on("close", () => {
      if (this.guest !== s) return
      this.guest = undefined
      this.emit("guest-close", "guest")
      this.flow()
    })
    this.emit("guest-open")
    const held = this.held
    this.held = []
    if (held.length > 0) {
      const n = held.reduce((sum, b) => sum + b.length, 0)
      this.counters.heldBytesDelivered += n
      this.emit("held-delivered", n)
      for (const b of held) this.toGuest(s, b)
    }
    this.flow()
  }

  private onHost(s: Socket): void {
    if (this.closed) return void s.destroy()
    s.on("error", () => {})
    s.on("close", () => this.onHostClose(s))
    if (this.host !== undefined) {
      this.waitingHosts.push(s)
      return
    }
    this.activateHost(s)
  }

  private activateHost(s: Socket): void {
    this.host = s
    this.counters.hostConnections++
    s.on("data", (b: Buffer) => {
      if (this.host !== s) return
      const g = this.guest
      if (g === undefined) {
        this.counters.hostBytesHeld += b.length
        this.held.push(b)
        return
      }
      this.toGuest(g, b)
    })
    this.emit("host-open")
    this.flow()
  }

  private toGuest(g: Socket, b: Buffer): void {
    this.emit("to-guest", b, this.counters.guestConnections)
    this.counters.hostToGuestBytes += b.length
    this.guestDelivered += b.length
    if (!g.write(b)) {
      this.host?.pause()
      g.once("drain", () => this.flow())
    }
  }

  private onHostClose(s: Socket): void {
    const waiting = this.waitingHosts.indexOf(s)
    if (waiting >= 0) {
      this.waitingHosts.splice(waiting, 1)
      return
    }
    if (this.host !== s) return
    this.host = undefined
    for (const b of this.held.splice(0)) this.counters.heldBytesDropped += b.length
    this.emit("host-close", this.hostCloseReason.get(s) ?? "host")
    if (this.guest !== undefined && this.guestDelivered > 0) {
      this.counters.guestClosedOnHostLeave++
      this.retireGuest("host-left")
    }
    const next = this.waitingHosts.shift()
    if (next !== undefined && !this.closed) this.activateHost(next)
    else this.flow()
  }

  /** Ends the guest connection with EOF (not RST) and forgets it; unread guest bytes are dropped, as in QEMU. */
  private retireGuest(reason: "host-left" | "hook" | "replaced"): void {
    const g = this.guest
    if (g === undefined) return
    this.guest = undefined
    g.removeAllListeners("data")
    g.on("data", () => {})
    g.resume()
    g.end()
    // The daemon closes its end on EOF at once; a stuck peer must not keep the socket forever.
    setTimeout(() => g.destroy(), 2000).unref()
    this.emit("guest-close", reason)
    this.flow()
  }

  /** Reads the guest only while a host can take its bytes; reads the host while a guest can, or into `held`. */
  private flow(): void {
    const g = this.guest
    const h = this.host
    if (g !== undefined && h !== undefined) {
      if (!h.writableNeedDrain) g.resume()
      if (!g.writableNeedDrain) h.resume()
    } else {
      g?.pause()
      h?.resume()
    }
  }
}

const listenOn = (server: Server, path: string): Promise<void> =>
  new Promise((resolve, reject) => {
    rmSync(path, { force: true })
    server.once("error", reject)
    server.listen(path, () => {
      server.off("error", reject)
      resolve()
    })
  })

const closeServer = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()))
