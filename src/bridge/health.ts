// GET /healthz on the metrics port: each configured VM's state, 200 when every one is up, 503 naming those that are
// not. "Up" is the bridge's own job done: the VM's tunnel is synced with its relay (welcome received). The chardev is
// reported but not required: a VM that is shut off has no socket to connect to, which is no fault of the bridge, and
// the relay already tells consoles whether an agent is there.
import type { Metrics } from "./metrics.ts"

/** What the bridge knows of one VM besides the metrics: running (its sessions started) or failed (not started). */
export type VmStatus =
  | { readonly phase: "running"; readonly configError?: { readonly key: string; readonly detail: string } }
  | { readonly phase: "failed"; readonly key: string; readonly detail: string }

export interface HealthVm {
  /** `up`: tunnel synced; `connecting`: running, tunnel not (yet) synced; `failed`: not running (config or token). */
  readonly state: "up" | "connecting" | "failed"
  readonly tunnel: boolean
  readonly chardev: boolean
  /** The guest port from QMP, when the VM has QMP. */
  readonly port: "open" | "closed" | "unknown"
  /** Why it failed, or (running) the error in its entry that the last reload rejected: the key and what is wrong. */
  readonly error?: { readonly key: string; readonly detail: string }
}

export interface Health {
  readonly status: "ok" | "degraded"
  readonly bridge: string
  readonly vms: Readonly<Record<string, HealthVm>>
  /** VMs not up, sorted. */
  readonly notUp: ReadonlyArray<string>
  /** The last reload's error, when the config on disk was rejected and the bridge runs on the previous one. */
  readonly reloadError?: { readonly key: string; readonly detail: string }
}

const PORT = new Map([[1, "open"], [0, "closed"]] as const)

export const healthOf = (
  bridge: string,
  vms: ReadonlyMap<string, VmStatus>,
  metrics: Metrics,
  reloadError: { readonly key: string; readonly detail: string } | undefined,
): Health => {
  const out: Record<string, HealthVm> = {}
  for (const id of [...vms.keys()].sort()) {
    const status = vms.get(id)!
    const labels = { vm: id }
    const tunnel = status.phase === "running" && metrics.get("vdrelay_bridge_tunnel_up", labels) === 1
    const chardev = status.phase === "running" && metrics.get("vdrelay_bridge_chardev_up", labels) === 1
    const port = status.phase === "running" ? (PORT.get(metrics.get("vdrelay_bridge_port_open", labels) as 0 | 1) ?? "unknown") : "unknown"
    const error = status.phase === "failed" ? { key: status.key, detail: status.detail } : status.configError
    out[id] = { state: status.phase === "failed" ? "failed" : tunnel ? "up" : "connecting", tunnel, chardev, port, ...(error === undefined ? {} : { error }) }
  }
  const notUp = Object.keys(out).filter((id) => out[id]!.state !== "up")
  return { status: notUp.length === 0 ? "ok" : "degraded", bridge, vms: out, notUp, ...(reloadError === undefined ? {} : { reloadError }) }
}
