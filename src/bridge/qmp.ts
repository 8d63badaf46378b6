// The QMP session: watches the guest side of the VM's virtserialport through QEMU's monitor. VSERPORT_CHANGE events
// are levels, rate limited by QEMU (1/s per device, only the latest kept): an event while the port is believed open
// reports it closed at once (PortWatch), and every event triggers a query-chardev, whose `frontend-open` is the truth
// (spec §8, §12), then polls for the window in which QEMU may hold the next event back. At most one query in flight.
import type net from "node:net"
import { Effect, type Scope } from "effect"
import type { QmpConfig } from "./config.ts"
import { BridgeError, describeCause } from "./errors.ts"
import type { Logger } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import { PortWatch } from "./port-watch.ts"
import { openSocket } from "./socket.ts"
import type { Established } from "./supervise.ts"
import type { VmCore } from "./vm-core.ts"

type Json = Record<string, unknown>
const MAX_LINE = 1024 * 1024

/**
 * After each event (and at start) QEMU may hold the next one back for up to 1 s (rate limit, spec §12), so a close in
 * that window would be learnt up to 1 s late, while guest-bound bytes pile up for the next opener. The bridge polls
 * query-chardev meanwhile: a close is seen within one interval (the guest's reopen takes ≥ 20 ms after an agent exit).
 */
const POLL_WINDOW_MS = 1_100
const POLL_INTERVAL_MS = 10

/** The wall-clock time (ms) QEMU stamped on an event, if it carries a well-formed `timestamp`. */
const stampOf = (e: Json): number | undefined => {
  const t = e.timestamp as Json | undefined
  const s = t?.seconds
  const us = t?.microseconds
  return typeof s === "number" && typeof us === "number" && s >= 0 ? s * 1000 + us / 1000 : undefined
}

/** JSON-lines QMP client: commands matched to replies by id, events handed to `onEvent`. */
class QmpClient {
  private buffer = ""
  private nextId = 1
  private readonly pending = new Map<number, { ok: (v: unknown) => void; err: (e: Error) => void }>()
  greeting: ((g: Json) => void) | undefined
  onEvent: (e: Json) => void = () => {}
  onBroken: (detail: string) => void = () => {}

  constructor(private readonly socket: net.Socket) {
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => this.feed(chunk))
    socket.on("close", () => {
      for (const p of this.pending.values()) p.err(new Error("QMP connection closed"))
      this.pending.clear()
    })
  }

  command(execute: string, args?: Json): Promise<unknown> {
    const id = this.nextId++
    return new Promise((ok, err) => {
      this.pending.set(id, { ok, err })
      this.socket.write(`${JSON.stringify(args === undefined ? { execute, id } : { execute, arguments: args, id })}\n`)
    })
  }

  private feed(chunk: string): void {
    this.buffer += chunk
    if (this.buffer.length > MAX_LINE) return this.onBroken(`QMP line longer than ${MAX_LINE} bytes`)
    let nl: number
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl).trim()
      this.buffer = this.buffer.slice(nl + 1)
      if (line !== "") this.line(line)
    }
  }

  private line(line: string): void {
    let msg: unknown
    try {
      msg = JSON.parse(line)
    } catch {
      return this.onBroken(`QMP sent a line that is not JSON: ${line.slice(0, 80)}`)
    }
    if (typeof msg !== "object" || msg === null) return this.onBroken("QMP sent a non-object")
    const m = msg as Json
    if ("QMP" in m) return this.greeting?.(m)
    if (typeof m.event === "string") return this.onEvent(m)
    const p = typeof m.id === "number" ? this.pending.get(m.id) : undefined
    if (p === undefined) return
    this.pending.delete(m.id as number)
    if ("error" in m) {
      const e = m.error as Json | undefined
      p.err(new Error(`${String(e?.class ?? "Error")}: ${String(e?.desc ?? "")}`))
    } else p.ok(m.return)
  }
}

const qmpError = (detail: string) => new BridgeError({ reason: "QmpProtocol", detail })

const call = (client: QmpClient, execute: string, args?: Json) =>
  Effect.tryPromise({ try: () => client.command(execute, args), catch: (e) => qmpError(`${execute}: ${describeCause(e)}`) })

/** The chardev id behind the device: configured, or QOM's `chardev` property of /machine/peripheral/<device>. */
const chardevOf = (client: QmpClient, cfg: QmpConfig) =>
  cfg.chardev !== undefined
    ? Effect.succeed(cfg.chardev)
    : call(client, "qom-get", { path: `/machine/peripheral/${cfg.device}`, property: "chardev" }).pipe(
        Effect.filterOrFail(
          (v): v is string => typeof v === "string" && v !== "",
          () => qmpError(`qom-get gave no chardev for device "${cfg.device}"; set qmp.chardev`),
        ),
      )

/** `frontend-open` of `label` in a query-chardev reply: "unknown" when the chardev is not listed. */
export const frontendOpen = (reply: unknown, label: string): "open" | "closed" | "unknown" => {
  if (!Array.isArray(reply)) return "unknown"
  const entry = reply.find((c: unknown) => typeof c === "object" && c !== null && (c as Json).label === label) as Json | undefined
  if (entry === undefined || typeof entry["frontend-open"] !== "boolean") return "unknown"
  return entry["frontend-open"] ? "open" : "closed"
}

export const qmpSession = (cfg: QmpConfig, core: VmCore, log: Logger, metrics: Metrics) => (mark: Established): Effect.Effect<never, BridgeError, Scope.Scope> =>
  Effect.gen(function* () {
    let client: QmpClient | undefined
    let greet: () => void = () => {}
    const greeted = new Promise<void>((ok) => (greet = ok))
    const { closed } = yield* openSocket(
      cfg.endpoint,
      { timeoutMs: 10_000, failReason: "QmpUnavailable", closedReason: "QmpClosed" },
      (socket) => {
        client = new QmpClient(socket)
        client.greeting = () => greet()
        client.onBroken = (detail) => socket.destroy(new Error(detail))
      },
      (cause) => core.portLevel("unknown", `qmp disconnected: ${cause}`),
    )
    const qmp = client!
    yield* Effect.tryPromise({ try: () => greeted, catch: () => qmpError("no greeting") }).pipe(
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => qmpError("no QMP greeting within 10 s") }),
      Effect.raceFirst(closed),
    )
    yield* call(qmp, "qmp_capabilities")
    const label = yield* chardevOf(qmp, cfg)
    // Live migration (migration.ts): a destination waits `inmigrate` with its tunnel shut until RESUME.
    // A monitor that refuses query-status (a filtering proxy) leaves the state unknown but the port watch running.
    const status = (yield* call(qmp, "query-status").pipe(Effect.orElseSucceed(() => undefined))) as Json | undefined
    core.migration.status(typeof status?.status === "string" ? status.status : "unknown", Date.now())
    // QEMU emits MIGRATION events only with the `events` capability (libvirt turns it on too); refused while a
    // migration runs, when whoever started it has set it already.
    yield* call(qmp, "migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] }).pipe(Effect.ignore)
    mark.established = true
    log.log("info", "qmp-connected", { device: cfg.device, chardev: label })

    // Coalesced queries: an event during a query makes exactly one more query after it (only the latest matters).
    const watch = new PortWatch()
    let inFlight = false
    let again: string | undefined
    let pollUntil = 0
    let pollTimer: NodeJS.Timeout | undefined
    let ended = false
    let lastQuery = 0
    const poll = (): void => {
      if (ended || pollTimer !== undefined || Date.now() >= pollUntil) return
      // One query per interval counted from the last one's start: a slow answer does not stretch the period further.
      pollTimer = setTimeout(
        () => {
          pollTimer = undefined
          query("poll while QEMU may hold an event back")
        },
        Math.max(0, lastQuery + POLL_INTERVAL_MS - Date.now()),
      )
    }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        ended = true
        clearTimeout(pollTimer)
      }),
    )
    const query = (cause: string): void => {
      if (inFlight) {
        again = cause
        return
      }
      inFlight = true
      lastQuery = Date.now()
      // A monitor that stops answering must not hold agent bytes back: report the level unchanged after 2 s.
      const timer = setTimeout(() => core.portLevel(core.port, "query-chardev unanswered"), 2_000)
      qmp.command("query-chardev").then(
        (reply) => {
          clearTimeout(timer)
          inFlight = false
          const level = frontendOpen(reply, label)
          watch.queried(level, core.port)
          core.portLevel(level, cause)
          if (again !== undefined) {
            const next = again
            again = undefined
            query(next)
          } else poll()
        },
        () => {
          clearTimeout(timer)
          inFlight = false
        },
      )
    }
    core.setPortProbe(() => query("agent bytes while closed"))
    yield* Effect.addFinalizer(() => Effect.sync(() => core.setPortProbe(undefined)))
    qmp.onEvent = (e) => {
      const data = e.data as Json | undefined
      if (typeof e.event === "string" && core.migration.event(e.event, data, Date.now())) return
      // An unplugged port gives DEVICE_DELETED and no VSERPORT_CHANGE; a reset gives VSERPORT_CHANGE false then RESET
      // (spec §12). Either way the guest's side is gone and QEMU reads nothing more from the socket until the next
      // opener, which would read what it holds first: report the port closed (the core hangs up) and ask again.
      if ((e.event === "DEVICE_DELETED" && data?.device === cfg.device) || e.event === "RESET") {
        metrics.inc("vdrelay_bridge_qmp_events_total", { vm: core.vm })
        watch.lost()
        core.portLevel("closed", e.event)
        pollUntil = Date.now() + POLL_WINDOW_MS
        query(e.event)
        return
      }
      if (e.event !== "VSERPORT_CHANGE" || data?.id !== cfg.device) return
      metrics.inc("vdrelay_bridge_qmp_events_total", { vm: core.vm })
      // A close is acted on before the query: bytes handed meanwhile would be stranded too, and the new chardev
      // connection must stay gated. The query then reports the port open again if it was a quick reopen.
      if (watch.event(data.open === true, core.port, stampOf(e))) core.portLevel("closed", "VSERPORT_CHANGE")
      pollUntil = Date.now() + POLL_WINDOW_MS
      query("VSERPORT_CHANGE")
    }
    // The last event before we connected may have started QEMU's window: poll through it.
    pollUntil = Date.now() + POLL_WINDOW_MS
    query("qmp connected")
    return yield* closed
  })
