// What a reload (SIGHUP) does to each VM: the running set against the config just read. Pure, so the rules are
// tested without sockets: a VM whose settings did not change keeps its sessions (tunnel, chardev, QMP) untouched; a
// changed one restarts alone; a failed one is tried again; one whose new entry is bad keeps running as it was.
import type { BridgeConfig, VmConfig, VmFailure } from "./config.ts"

/** What the bridge has for one VM now: its settings when it has valid ones, and whether it is marked failed. */
export interface CurrentVm {
  readonly config: VmConfig | undefined
  readonly failed: boolean
}

export type VmAction =
  /** Not running before (new, or failed and tried again): start it with these settings. */
  | { readonly kind: "start"; readonly vm: VmConfig }
  /** Running with other settings (or the host-wide ones changed): stop its sessions, start them again. */
  | { readonly kind: "restart"; readonly vm: VmConfig; readonly changed: ReadonlyArray<string> }
  /** Running with the same settings: not touched. */
  | { readonly kind: "keep"; readonly id: string }
  /** Running, but its new entry is bad: keeps running as it was, the error reported. */
  | { readonly kind: "keep-rejected"; readonly id: string; readonly failure: VmFailure }
  /** Its entry is bad and it was not running: marked failed. */
  | { readonly kind: "fail"; readonly failure: VmFailure }
  /** No longer in the config: stopped (its sessions closed, its metrics dropped). */
  | { readonly kind: "stop"; readonly id: string }

/** The host-wide keys every VM's sessions were built with: a change restarts every VM. */
const VM_WIDE = ["bridge", "limits", "reconnect", "pingIntervalMs"] as const

/** Canonical JSON (sorted keys): settings read twice from the same text compare equal whatever the key order. */
const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(",")}]`
    : typeof v === "object" && v !== null
      ? `{${Object.keys(v)
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(",")}}`
      : JSON.stringify(v)

/** The settings of a VM a reload compares, by name (`at`, the entry's place in the file, is not one: reordering is no change). */
const vmSettings = (vm: VmConfig): Record<string, string> =>
  Object.fromEntries(Object.entries(vm).filter(([k]) => k !== "at").map(([k, v]) => [k, canonical(v)]))

/** Which of a VM's settings differ (`chardev`, `tokenFile`, …); empty when none. */
export const vmChanges = (a: VmConfig, b: VmConfig): Array<string> => {
  const x = vmSettings(a)
  const y = vmSettings(b)
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => x[k] !== y[k]).sort()
}

/** Host-wide keys that differ between two configs and that every VM's sessions depend on. */
export const hostChanges = (a: BridgeConfig, b: BridgeConfig): Array<string> => VM_WIDE.filter((k) => canonical(a[k]) !== canonical(b[k]))

/**
 * One action per VM, known or new. `hostChanged` (from hostChanges) restarts every running VM. The token file's
 * contents are no setting: the tunnel reads it at every connect, so a rotated token needs no reload.
 */
export const planReload = (current: ReadonlyMap<string, CurrentVm>, next: BridgeConfig, hostChanged: ReadonlyArray<string> = []): Array<VmAction> => {
  const actions: Array<VmAction> = []
  const named = new Set<string>()
  for (const vm of next.vms) {
    named.add(vm.id)
    const now = current.get(vm.id)
    if (now === undefined || now.config === undefined || now.failed) actions.push({ kind: "start", vm })
    else {
      const changed = [...vmChanges(now.config, vm), ...hostChanged]
      actions.push(changed.length === 0 ? { kind: "keep", id: vm.id } : { kind: "restart", vm, changed })
    }
  }
  for (const failure of next.failed) {
    named.add(failure.vm)
    const now = current.get(failure.vm)
    if (now !== undefined && now.config !== undefined && !now.failed) actions.push({ kind: "keep-rejected", id: failure.vm, failure })
    else actions.push({ kind: "fail", failure })
  }
  for (const id of current.keys()) if (!named.has(id)) actions.push({ kind: "stop", id })
  return actions
}
