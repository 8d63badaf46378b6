// The bridge config's `libvirt` section: which libvirt to ask for the host's VMs, and how. The VMs themselves are the
// domains whose XML carries the vdrelay metadata element (libvirt-domain.ts); their tunnel URL and token file come
// from the host-wide `edge` and `tokenFile` templates, `{vm}` standing for the metadata's VM id.

export interface LibvirtConfig {
  /** libvirt connection URI (`virsh -c`): `qemu:///system`, or a `qemu+unix:///system?socket=…` of another daemon. */
  readonly uri: string
  /** The virsh binary (a name on PATH or a path). */
  readonly virsh: string
  /** The virtio port name of the agent channel in the domain XML. */
  readonly channel: string
  /** Every this many ms each running VM's domain XML is read again (a safety net under the events). */
  readonly reconcileMs: number
  /**
   * Follow QEMU's VSERPORT_CHANGE through `virsh qemu-monitor-event` (default). It needs a read-write libvirt connection
   * (libvirt refuses it on the read-only socket); false: the port level comes from the XML alone, read every
   * `reconcileMs`, and the bridge can use `qemu:///system?socket=/run/libvirt/libvirt-sock-ro`.
   */
  readonly monitorEvents: boolean
  /** The tunnel URL template (`{vm}`): the top-level `edge`. */
  readonly edge: string
  /** The token file template (`{vm}`): the top-level `tokenFile`. */
  readonly tokenFile: string
}

export const LIBVIRT_DEFAULTS = { uri: "qemu:///system", virsh: "virsh", channel: "com.redhat.spice.0", reconcileMs: 10_000, monitorEvents: true } as const

const KEYS = ["uri", "virsh", "channel", "reconcileMs", "monitorEvents"] as const

/**
 * Reads `libvirt` (undefined when absent). `fail(key, detail)` throws the caller's config error, so that this module
 * needs nothing of config.ts (which calls it).
 */
export const parseLibvirt = (
  v: unknown,
  host: { readonly edge: string | undefined; readonly tokenFile: string | undefined },
  fail: (key: string, detail: string) => never,
): LibvirtConfig | undefined => {
  if (v === undefined) return undefined
  if (typeof v !== "object" || v === null || Array.isArray(v)) return fail("libvirt", `must be an object { ${KEYS.join(", ")} } (all optional)`)
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) if (!(KEYS as ReadonlyArray<string>).includes(k)) fail(`libvirt.${k}`, `unknown key (allowed: ${KEYS.join(", ")})`)
  const text = (k: "uri" | "virsh" | "channel"): string => {
    const s = o[k]
    if (s === undefined) return LIBVIRT_DEFAULTS[k]
    if (typeof s !== "string" || s.trim() === "") return fail(`libvirt.${k}`, "must be a non-empty string")
    return s
  }
  const r = o.reconcileMs
  if (r !== undefined && (typeof r !== "number" || !Number.isInteger(r) || r < 200 || r > 3_600_000)) fail("libvirt.reconcileMs", "must be an integer in [200, 3600000]")
  const m = o.monitorEvents
  if (m !== undefined && typeof m !== "boolean") fail("libvirt.monitorEvents", "must be true or false")
  if (host.edge === undefined) fail("edge", "is required with libvirt (the tunnel URL template, {vm} for the VM id)")
  if (host.tokenFile === undefined || !host.tokenFile.includes("{vm}")) fail("tokenFile", 'is required with libvirt and must contain {vm} (e.g. "/etc/vdrelay/tokens/{vm}.token")')
  return {
    uri: text("uri"),
    virsh: text("virsh"),
    channel: text("channel"),
    reconcileMs: (r as number | undefined) ?? LIBVIRT_DEFAULTS.reconcileMs,
    monitorEvents: (m as boolean | undefined) ?? LIBVIRT_DEFAULTS.monitorEvents,
    edge: host.edge!,
    tokenFile: host.tokenFile!,
  }
}
