// Counters and gauges of the bridge, rendered as Prometheus text exposition (version 0.0.4).

type Labels = Readonly<Record<string, string>>

interface Family {
  readonly type: "counter" | "gauge"
  readonly help: string
  readonly values: Map<string, number>
}

const families = {
  vdrelay_bridge_chardev_connects_total: ["counter", "Chardev socket connections made (each starts an epoch)."],
  vdrelay_bridge_chardev_disconnects_total: ["counter", "Chardev socket connections lost or closed."],
  vdrelay_bridge_chardev_hangups_total: ["counter", "Chardev connections hung up because the guest closed its port (QEMU then drops the bytes it held)."],
  vdrelay_bridge_tunnel_connects_total: ["counter", "Tunnels that completed hello/welcome."],
  vdrelay_bridge_tunnel_disconnects_total: ["counter", "Tunnels lost or closed, by cause."],
  vdrelay_bridge_tunnel_resumes_total: ["counter", "Welcomes that resumed the current epoch."],
  vdrelay_bridge_qmp_events_total: ["counter", "VSERPORT_CHANGE events for the VM's port."],
  vdrelay_bridge_agent_bytes_read_total: ["counter", "Agent bytes read from the chardev."],
  vdrelay_bridge_agent_bytes_sent_total: ["counter", "Agent bytes sent in data frames (replays included)."],
  vdrelay_bridge_agent_bytes_replayed_total: ["counter", "Agent bytes sent again after a resume or rewind."],
  vdrelay_bridge_guest_bytes_written_total: ["counter", "Guest-bound bytes written to the chardev."],
  vdrelay_bridge_guest_messages_written_total: ["counter", "Guest-bound messages written whole to the chardev."],
  vdrelay_bridge_guest_messages_discarded_total: ["counter", "Guest-bound messages discarded, by reason."],
  vdrelay_bridge_guest_duplicates_suppressed_total: ["counter", "Client messages not written again: their key was written whole before (a resend)."],
  vdrelay_bridge_link_errors_total: ["counter", "Relay frames rejected or out of sequence, by reason."],
  vdrelay_bridge_read_paused: ["gauge", "1 while the bridge is not reading the chardev (retention or window full)."],
  vdrelay_bridge_retained_bytes: ["gauge", "Unacknowledged agent bytes retained for replay."],
  vdrelay_bridge_guest_buffered_bytes: ["gauge", "Guest-bound bytes buffered (partial and complete messages)."],
  vdrelay_bridge_port_open: ["gauge", "Guest port level from QMP: 1 open, 0 closed, -1 unknown."],
  vdrelay_bridge_tunnel_up: ["gauge", "1 while the tunnel is synced (welcome received)."],
  vdrelay_bridge_chardev_up: ["gauge", "1 while the chardev socket is connected."],
  vdrelay_bridge_migration_transitions_total: ["counter", "Live-migration roles entered (outgoing, completed, retired, incoming, resumed, none), docs/migration.md."],
  vdrelay_bridge_migration_handovers_total: ["counter", "Live migrations handed over to the relay by this (source) bridge."],
  vdrelay_bridge_migration_continued_total: ["counter", "Live migrations continued on the relay by this (destination) bridge."],
  vdrelay_bridge_migration_backlog_total: ["counter", "Migrations in which reading the source chardev paused: guest bytes may reach the relay twice."],
  vdrelay_bridge_migration_late_bytes_total: ["counter", "Agent bytes read from a source chardev after its handover (the destination sends them too)."],
  vdrelay_bridge_migration_untaken_bytes_total: ["counter", "Guest-bound bytes a migration's source had handed to its chardev socket that QEMU had not taken at STOP (never reach the guest: the handover says torn)."],
  vdrelay_bridge_vm_failed: ["gauge", "1 while the VM is not run: its config entry is bad or its token file unreadable."],
  vdrelay_bridge_reloads_total: ["counter", "Config reloads (SIGHUP), by result (ok, rejected)."],
} as const

export type MetricName = keyof typeof families

const key = (labels: Labels): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k] ?? "")}"`)
    .join(",")

const escapeLabel = (v: string): string => v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"')

export class Metrics {
  private readonly store = new Map<MetricName, Family>()

  constructor() {
    for (const [name, [type, help]] of Object.entries(families)) {
      this.store.set(name as MetricName, { type, help, values: new Map() })
    }
  }

  inc(name: MetricName, labels: Labels, by = 1): void {
    const values = this.store.get(name)!.values
    const k = key(labels)
    values.set(k, (values.get(k) ?? 0) + by)
  }

  set(name: MetricName, labels: Labels, value: number): void {
    this.store.get(name)!.values.set(key(labels), value)
  }

  get(name: MetricName, labels: Labels): number {
    return this.store.get(name)!.values.get(key(labels)) ?? 0
  }

  /** Forgets every series of one VM (it left the config, or restarts with new settings). */
  dropVm(vm: string): void {
    const label = `vm="${escapeLabel(vm)}"`
    for (const fam of this.store.values()) {
      for (const k of [...fam.values.keys()]) if (k.split(",").includes(label)) fam.values.delete(k)
    }
  }

  render(): string {
    const out: Array<string> = []
    for (const [name, fam] of this.store) {
      out.push(`# HELP ${name} ${fam.help}`, `# TYPE ${name} ${fam.type}`)
      for (const [k, v] of fam.values) out.push(k === "" ? `${name} ${v}` : `${name}{${k}} ${v}`)
    }
    return `${out.join("\n")}\n`
  }
}
