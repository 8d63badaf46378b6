// The lines `virsh event --all --loop` and `virsh qemu-monitor-event --loop` print (libvirt 9.0, tools/virsh-domain-
// event.c), read into values: domain events name a domain and what happened to it; monitor events carry QEMU's own
// event (name, QEMU's timestamp, JSON data), as the domain's QMP monitor emitted it.

/** `event 'lifecycle' for domain 'web-01': Started Booted` and the like. */
export interface DomainEvent {
  readonly kind: "domain"
  /** virsh's event name: lifecycle, reboot, device-added, device-removed, metadata-change, agent-lifecycle, … */
  readonly event: string
  readonly domain: string
  /** What virsh prints after the colon (`Started Booted`, `Stopped Migrated`, the device alias, …); "" when none. */
  readonly detail: string
}

/** `event VSERPORT_CHANGE at 1796547877.318067 for domain 'web-01': {"open":false,"id":"channel1"}`. */
export interface MonitorEvent {
  readonly kind: "monitor"
  readonly event: string
  readonly domain: string
  /** QEMU's timestamp of the event (ms since the epoch): when the change happened, kept while rate limited. */
  readonly stampMs: number
  readonly data: Readonly<Record<string, unknown>> | undefined
}

const DOMAIN_LINE = /^event '([^']+)' for domain '(.*?)'(?:: (.*))?$/
const MONITOR_LINE = /^event (\S+) at (\d+)\.(\d{1,6}) for domain '(.*?)': (\{.*\}|<null>)$/

/** One line of `virsh event`; undefined for anything else (blank lines, `events received: N`). */
export const parseDomainEventLine = (line: string): DomainEvent | undefined => {
  const m = DOMAIN_LINE.exec(line.trimEnd())
  if (m === null) return undefined
  return { kind: "domain", event: m[1]!, domain: m[2]!, detail: m[3] ?? "" }
}

/** One line of `virsh qemu-monitor-event` (without --pretty or --timestamp); undefined for anything else. */
export const parseMonitorEventLine = (line: string): MonitorEvent | undefined => {
  const m = MONITOR_LINE.exec(line.trimEnd())
  if (m === null) return undefined
  let data: Record<string, unknown> | undefined
  if (m[5] !== "<null>") {
    try {
      const parsed: unknown = JSON.parse(m[5]!)
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
      data = parsed as Record<string, unknown>
    } catch {
      return undefined
    }
  }
  const micros = Number(m[3]!.padEnd(6, "0"))
  return { kind: "monitor", event: m[1]!, domain: m[4]!, stampMs: Number(m[2]) * 1000 + micros / 1000, data }
}

/** A VSERPORT_CHANGE for one device: its alias and the level it reports. */
export const serialChange = (e: MonitorEvent): { readonly device: string; readonly open: boolean } | undefined => {
  if (e.event !== "VSERPORT_CHANGE" || typeof e.data?.id !== "string" || typeof e.data.open !== "boolean") return undefined
  return { device: e.data.id, open: e.data.open }
}

/**
 * Whether a domain event may have changed what the bridge reads from the domain's XML (its state, the agent
 * channel's socket path or alias, the vdrelay metadata): then the domain is read again.
 */
export const rereads = (e: DomainEvent): boolean =>
  e.event === "lifecycle" || e.event === "device-added" || e.event === "device-removed" || e.event === "metadata-change"

/** `lifecycle` details after which the domain's QEMU is gone (Stopped …, Shutdown Finished, Crashed …). */
export const stopped = (e: DomainEvent): boolean => e.event === "lifecycle" && /^(Stopped|Crashed|Shutdown Finished)\b/.test(e.detail)
