// A fake QEMU QMP monitor for tests: JSON lines on a UNIX socket, the greeting, qmp_capabilities negotiation,
// query-chardev with `frontend-open`, qom-get of a virtserialport's chardev, and VSERPORT_CHANGE events rate limited
// the way QEMU does it (first event at once, then at most one per window per device id, only the latest kept, the
// window restarting at each emitted event: spec §8, §12).
import net from "node:net"

type Json = Record<string, unknown>

export interface FakeQmpOptions {
  readonly path: string
  /** The virtserialport device id (VSERPORT_CHANGE `data.id`). */
  readonly device: string
  /** Its chardev id (query-chardev `label`). */
  readonly chardev: string
  /** Initial guest port level. */
  readonly open?: boolean
  /** QEMU's VSERPORT_CHANGE throttle per device id; 1000 ms in QEMU. */
  readonly rateLimitMs?: number
}

export interface FakeQmp {
  /**
   * The guest opens or closes the port: `frontend-open` changes now, the event follows under the rate limit. With
   * `event: false` no VSERPORT_CHANGE at all, as when the port is unplugged (device_del: DEVICE_DELETED only, spec §12).
   */
  setGuestOpen(open: boolean, opts?: { readonly event?: boolean }): void
  /** Sends an arbitrary event to every negotiated client (e.g. a stale VSERPORT_CHANGE). */
  emit(event: string, data: Json): void
  /** Every command executed, in order, across connections. */
  readonly commands: ReadonlyArray<string>
  /** Connected clients that completed qmp_capabilities. */
  readonly negotiated: number
  /** Drops every client connection (QEMU restarting its monitor). */
  dropClients(): void
  close(): Promise<void>
}

export const startFakeQmp = async (opts: FakeQmpOptions): Promise<FakeQmp> => {
  let open = opts.open ?? false
  const rateLimitMs = opts.rateLimitMs ?? 1000
  const commands: Array<string> = []
  const clients = new Set<{ socket: net.Socket; ready: boolean }>()
  let windowUntil = 0
  /** The held event's data and the stamp of the change it reports (QEMU stamps at the change, not at the flush). */
  let pending: { data: Json; timestamp: Json } | undefined
  let timer: NodeJS.Timeout | undefined

  const send = (socket: net.Socket, msg: Json): void => void socket.write(`${JSON.stringify(msg)}\n`)
  const broadcast = (msg: Json): void => {
    for (const c of clients) if (c.ready) send(c.socket, msg)
  }
  const timestamp = (): Json => {
    const now = Date.now()
    return { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 }
  }
  const emitNow = (event: string, data: Json, stamp: Json = timestamp()): void => broadcast({ event, data, timestamp: stamp })

  // QEMU's monitor_qapi_event_queue: a throttled event is parked (latest wins) and flushed when the window ends.
  const flush = (): void => {
    timer = undefined
    if (pending === undefined) return
    emitNow("VSERPORT_CHANGE", pending.data, pending.timestamp)
    pending = undefined
    windowUntil = Date.now() + rateLimitMs
    timer = setTimeout(flush, rateLimitMs)
  }
  const vserportChange = (data: Json): void => {
    if (Date.now() >= windowUntil && timer === undefined) {
      emitNow("VSERPORT_CHANGE", data)
      windowUntil = Date.now() + rateLimitMs
      timer = setTimeout(flush, rateLimitMs)
    } else pending = { data, timestamp: timestamp() }
  }

  const execute = (socket: net.Socket, client: { ready: boolean }, msg: Json): void => {
    const id = msg.id
    const reply = (body: Json): void => send(socket, id === undefined ? body : { ...body, id })
    const cmd = String(msg.execute)
    commands.push(cmd)
    if (!client.ready && cmd !== "qmp_capabilities") {
      return reply({ error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } })
    }
    switch (cmd) {
      case "qmp_capabilities":
        if (client.ready) return reply({ error: { class: "CommandNotFound", desc: "Capabilities negotiation is already complete, command ignored" } })
        client.ready = true
        return reply({ return: {} })
      case "query-chardev":
        return reply({
          return: [
            { "frontend-open": true, filename: "unix:/tmp/monitor.sock,server=on", label: "monitor" },
            { "frontend-open": open, filename: "disconnected:unix:/tmp/vdagent.sock,server=on", label: opts.chardev },
          ],
        })
      // A running VM, as the bridge asks at connect (live migration: a destination waits while `inmigrate`).
      case "query-status":
        return reply({ return: { status: "running", singlestep: false, running: true } })
      case "migrate-set-capabilities":
        return reply({ return: {} })
      case "qom-get": {
        const args = (msg.arguments ?? {}) as Json
        if (args.path === `/machine/peripheral/${opts.device}` && args.property === "chardev") return reply({ return: opts.chardev })
        return reply({ error: { class: "DeviceNotFound", desc: `Device '${String(args.path)}' not found` } })
      }
      default:
        return reply({ error: { class: "CommandNotFound", desc: `The command ${cmd} has not been found` } })
    }
  }

  const server = net.createServer((socket) => {
    const client = { socket, ready: false }
    clients.add(client)
    socket.on("close", () => clients.delete(client))
    socket.on("error", () => {})
    send(socket, { QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: "Debian 1:7.2+dfsg-7" }, capabilities: ["oob"] } })
    let buffer = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      buffer += chunk
      let nl: number
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (line === "") continue
        let msg: Json
        try {
          msg = JSON.parse(line) as Json
        } catch {
          send(socket, { error: { class: "GenericError", desc: "JSON parse error" } })
          continue
        }
        execute(socket, client, msg)
      }
    })
  })
  await new Promise<void>((ok, fail) => {
    server.once("error", fail)
    server.listen(opts.path, () => ok())
  })

  return {
    setGuestOpen(next, change) {
      if (next === open) return
      open = next
      if (change?.event !== false) vserportChange({ open: next, id: opts.device })
    },
    emit: emitNow,
    commands,
    get negotiated() {
      return [...clients].filter((c) => c.ready).length
    },
    dropClients() {
      for (const c of clients) c.socket.destroy()
    },
    close: () =>
      new Promise<void>((ok) => {
        if (timer !== undefined) clearTimeout(timer)
        for (const c of clients) c.socket.destroy()
        server.close(() => ok())
      }),
  }
}
