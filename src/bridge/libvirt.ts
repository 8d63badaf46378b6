// The bridge's libvirt source: the host's VMs are the running domains whose XML carries the vdrelay metadata element,
// each with its agent channel's socket (from the live XML) and its guest port level (libvirt-port.ts). It talks to
// libvirt through `virsh` (no native module): two long-lived `virsh … --loop` processes for domain events and QEMU's
// VSERPORT_CHANGE, and one `virsh dumpxml` per read. Each VM runs the same core, chardev and tunnel sessions as a VM of
// the `vms` list; a domain that stops (or migrates away) stops its VM, one that starts (or arrives) starts it.
import { execFile, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { Effect, FiberMap, type Scope } from "effect"
import { chardevSession } from "./chardev.ts"
import type { Limits, VmConfig } from "./config.ts"
import { BridgeError, describeCause } from "./errors.ts"
import type { LibvirtConfig } from "./libvirt-config.ts"
import { type DomainInfo, agentChannel, parseDomain } from "./libvirt-domain.ts"
import { type DomainEvent, type MonitorEvent, parseDomainEventLine, parseMonitorEventLine, rereads, serialChange, stopped } from "./libvirt-events.ts"
import { LibvirtPortWatch } from "./libvirt-port.ts"
import { type Logger, withFields } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import { supervise } from "./supervise.ts"
import { tunnelSession } from "./tunnel.ts"
import { VmCore } from "./vm-core.ts"

/** The host-wide settings every VM's sessions are built with (BridgeConfig's). */
export interface LibvirtHost {
  readonly bridge: string
  readonly limits: Limits
  readonly reconnect: { readonly baseMs: number; readonly capMs: number }
  readonly pingIntervalMs: number
}

/** Without monitor events the bridge needs nothing but reads: it opens a read-only connection (`virsh -r`). */
const connection = (cfg: LibvirtConfig): ReadonlyArray<string> => (cfg.monitorEvents ? ["-c", cfg.uri] : ["-r", "-c", cfg.uri])

/** Runs `virsh -c <uri> <args>`; resolves with its stdout, rejects with its stderr's last line. */
export const virsh = (cfg: LibvirtConfig, args: ReadonlyArray<string>, timeoutMs = 30_000): Promise<string> =>
  new Promise((ok, err) =>
    execFile(cfg.virsh, [...connection(cfg), ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (e, stdout, stderr) => {
      if (e === null) return ok(stdout)
      const said = stderr.trim().split("\n").filter((l) => l.trim() !== "").at(-1)
      err(new Error(said ?? describeCause(e)))
    }),
  )

/** A stream that has not failed for this long is taken as connected (virsh says nothing when it has registered). */
const ALIVE_MS = 2_000

/**
 * A long-lived `virsh … --loop`: each stdout line to `onLine`, `alive` once it has run ALIVE_MS; fails when virsh exits
 * (libvirtd gone or restarting, a bad URI).
 */
const virshStream = (cfg: LibvirtConfig, args: ReadonlyArray<string>, onLine: (line: string) => void, alive: () => void): Effect.Effect<never, BridgeError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => spawn(cfg.virsh, [...connection(cfg), ...args], { stdio: ["ignore", "pipe", "pipe"] })),
    (child) => Effect.sync(() => void (child.exitCode === null && child.signalCode === null && child.kill("SIGTERM"))),
  ).pipe(
    Effect.flatMap((child) =>
      Effect.async<never, BridgeError>((resume) => {
        let stderr = ""
        child.stderr.setEncoding("utf8")
        child.stderr.on("data", (s: string) => (stderr = (stderr + s).slice(-2000)))
        createInterface({ input: child.stdout }).on("line", onLine)
        const timer = setTimeout(alive, ALIVE_MS)
        const failed = (detail: string): void => {
          clearTimeout(timer)
          resume(Effect.fail(new BridgeError({ reason: "LibvirtUnavailable", detail })))
        }
        child.once("error", (e) => failed(`${cfg.virsh}: ${describeCause(e)}`))
        child.once("exit", (code, signal) => failed(`virsh ${args[0]} exited (${signal ?? `code ${code}`}): ${stderr.trim().split("\n").at(-1) ?? ""}`))
        return Effect.sync(() => clearTimeout(timer))
      }),
    ),
  )

/** One VM learnt from a domain: what it runs with, and its port watcher. */
interface Managed {
  readonly domain: string
  readonly vm: string
  readonly path: string
  readonly alias: string | undefined
  readonly watch: LibvirtPortWatch
}

/** Why a domain read is not (or no longer) one of the bridge's VMs; undefined when it is. */
const unusable = (d: DomainInfo, channel: string): string | undefined => {
  if (d.problem !== undefined) return d.problem
  if (d.vm === undefined) return "no vdrelay metadata"
  if (!d.running) return "not running"
  const c = agentChannel(d, channel)
  if (c === undefined) return `no virtio channel named ${channel}`
  if (c.path === undefined) return `channel ${channel} is not <channel type='unix'> with a source path`
  return undefined
}

/**
 * Follows libvirt until interrupted: starts and stops VMs as their domains start and stop, and feeds each VM's core the
 * guest port level. Never fails (virsh failures are retried with the host's backoff and logged as `libvirt-retry`).
 */
export const runLibvirt = (host: LibvirtHost, cfg: LibvirtConfig, log: Logger, metrics: Metrics): Effect.Effect<never, never, Scope.Scope> =>
  Effect.gen(function* () {
    const lvLog = withFields(log, { source: "libvirt" })
    const fibers = yield* FiberMap.make<string>()
    const managed = new Map<string, Managed>()
    const runFork = <A>(e: Effect.Effect<A>): void => void Effect.runFork(e)

    const startVm = (d: DomainInfo, vm: string, path: string, alias: string | undefined, cause: string): void => {
      const vmLog = withFields(log, { vm })
      const core = new VmCore(vm, host.bridge, host.limits, vmLog, metrics)
      const watch = new LibvirtPortWatch(core, (why) => read(d.name, why))
      managed.set(d.name, { domain: d.name, vm, path, alias, watch })
      const vmConfig = { id: vm, at: `libvirt:${d.name}`, chardev: { kind: "unix", path }, qmp: undefined, url: cfg.edge.replaceAll("{vm}", encodeURIComponent(vm)), tokenFile: cfg.tokenFile.replaceAll("{vm}", vm) } as const
      const tunnelOpts = { linkBufferBytes: host.limits.linkBufferBytes, pingIntervalMs: host.pingIntervalMs, welcomeTimeoutMs: 15_000 }
      const chardevBackoff = { baseMs: Math.min(host.reconnect.baseMs, 100), capMs: Math.min(host.reconnect.capMs, 5_000) }
      const body = Effect.all(
        [
          supervise("chardev", chardevSession(vmConfig.chardev, core), chardevBackoff, withFields(vmLog, { endpoint: "chardev" })),
          supervise("tunnel", tunnelSession(vmConfig as VmConfig, core, vmLog, tunnelOpts), host.reconnect, vmLog),
        ],
        { concurrency: "unbounded" },
      ).pipe(Effect.ensuring(Effect.sync(() => watch.end())))
      lvLog.log("info", "libvirt-vm-started", { vm, domain: d.name, chardev: path, device: alias, cause })
      runFork(FiberMap.run(fibers, vm, body))
    }

    /** `replaced`: the same VM id starts again at once; FiberMap.run then interrupts the old fiber itself. */
    const stopVm = (domain: string, cause: string, replaced = false): void => {
      const m = managed.get(domain)
      if (m === undefined) return
      managed.delete(domain)
      m.watch.guestGone(cause)
      m.watch.end()
      lvLog.log("info", "libvirt-vm-stopped", { vm: m.vm, domain, cause })
      if (!replaced) runFork(FiberMap.remove(fibers, m.vm))
    }

    /** Applies a read of `domain`'s XML (started at `startedAt`). */
    const apply = (domain: string, d: DomainInfo | undefined, startedAt: number, cause: string): void => {
      const m = managed.get(domain)
      const why = d === undefined ? "domain gone" : unusable(d, cfg.channel)
      if (why !== undefined) {
        if (m !== undefined) stopVm(domain, why)
        else if (d?.vm !== undefined || d?.problem !== undefined) lvLog.log("debug", "libvirt-domain-skipped", { domain, cause: why })
        return
      }
      const c = agentChannel(d!, cfg.channel)!
      if (m !== undefined && m.vm === d!.vm && m.path === c.path && m.alias === c.alias) return m.watch.xmlState(c.state, startedAt, cause)
      if (m !== undefined) stopVm(domain, "domain changed", m.vm === d!.vm)
      const owner = [...managed.values()].find((o) => o.vm === d!.vm)
      if (owner !== undefined) {
        lvLog.log("warn", "libvirt-domain-skipped", { domain, vm: d!.vm, cause: `VM id already taken by domain ${owner.domain}` })
        return
      }
      startVm(d!, d!.vm!, c.path!, c.alias, cause)
      // The level at start comes from the same read (libvirt took it from query-chardev when it started the domain).
      managed.get(domain)?.watch.xmlState(c.state, startedAt, cause)
    }

    // Reads are coalesced per domain: one in flight, at most one more after it (only the latest state matters).
    const busy = new Map<string, string | undefined>()
    const read = (domain: string, cause: string): void => {
      if (busy.has(domain)) {
        busy.set(domain, cause)
        return
      }
      busy.set(domain, undefined)
      const startedAt = Date.now()
      virsh(cfg, ["dumpxml", "--", domain]).then(
        (xml) => {
          let d: DomainInfo | undefined
          try {
            d = parseDomain(xml)
          } catch (e) {
            lvLog.log("warn", "libvirt-domain-unreadable", { domain, cause: describeCause(e) })
          }
          if (d !== undefined) apply(domain, d, startedAt, cause)
        },
        (e: Error) => {
          // "failed to get domain": undefined meanwhile. Anything else (libvirtd restarting) leaves things as they are;
          // the event streams' retry reads everything again.
          if (/failed to get domain|Domain not found/i.test(e.message)) apply(domain, undefined, startedAt, cause)
          else lvLog.log("warn", "libvirt-read-failed", { domain, cause: e.message })
        },
      ).finally(() => {
        const again = busy.get(domain)
        busy.delete(domain)
        if (again !== undefined) read(domain, again)
      })
    }

    /** Every running domain read again, and every managed one (to notice those that stopped unseen). */
    const readAll = (cause: string): void => {
      virsh(cfg, ["list", "--name"]).then(
        (out) => {
          const names = new Set(out.split("\n").map((l) => l.trim()).filter((l) => l !== ""))
          for (const domain of managed.keys()) names.add(domain)
          for (const domain of names) read(domain, cause)
        },
        (e: Error) => lvLog.log("debug", "libvirt-read-failed", { cause: e.message }),
      )
    }

    const onDomainEvent = (e: DomainEvent): void => {
      // A stopped domain's guest has no port: say so before reading (the read takes a process start).
      if (stopped(e)) managed.get(e.domain)?.watch.guestGone(`domain ${e.detail}`)
      // QEMU's RESET: the guest rebooted, nobody has the port open until its agent starts again (spec §12).
      if (e.event === "reboot") managed.get(e.domain)?.watch.guestGone("domain reset")
      if (rereads(e)) read(e.domain, `${e.event} ${e.detail}`.trim())
    }
    const onMonitorEvent = (e: MonitorEvent): void => {
      const change = serialChange(e)
      const m = managed.get(e.domain)
      if (change === undefined || m === undefined || change.device !== m.alias) return
      metrics.inc("vdrelay_bridge_qmp_events_total", { vm: m.vm })
      m.watch.serialChange(change.open, e.stampMs)
    }

    // The streams cannot say when libvirt has registered them: read everything when each starts and once more when
    // it has run ALIVE_MS, so a change between the first read and the registration is not missed for long.
    const stream = (what: string, args: ReadonlyArray<string>, onLine: (line: string) => void) =>
      supervise(
        what,
        (mark) =>
          Effect.suspend(() => {
            readAll(`${what} starting`)
            return virshStream(cfg, args, onLine, () => {
              mark.established = true
              lvLog.log("info", "libvirt-connected", { uri: cfg.uri, stream: args[0] })
              readAll(`${what} connected`)
            })
          }),
        host.reconnect,
        lvLog,
      )
    const timer = setInterval(() => {
      for (const domain of managed.keys()) read(domain, "reconcile")
    }, cfg.reconcileMs)
    yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const m of managed.values()) m.watch.end()
      }),
    )
    const streams = [
      stream("libvirt", ["event", "--all", "--loop"], (line) => {
        const e = parseDomainEventLine(line)
        if (e !== undefined) onDomainEvent(e)
      }),
    ]
    if (cfg.monitorEvents) {
      streams.push(
        stream("vserport", ["qemu-monitor-event", "--loop", "--event", "VSERPORT_CHANGE"], (line) => {
          const e = parseMonitorEventLine(line)
          if (e !== undefined) onMonitorEvent(e)
        }),
      )
    }
    return yield* Effect.all(streams, { concurrency: "unbounded" }).pipe(Effect.andThen(Effect.never))
  })
