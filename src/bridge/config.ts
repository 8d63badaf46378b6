// The bridge's JSON config: parsed and checked into a typed value, or a ConfigError naming the offending key.
import { NAME_PATTERN } from "../auth/token.ts"
import { MAX_FRAME_DATA_BYTES } from "../link/types.ts"
import { type LibvirtConfig, parseLibvirt } from "./libvirt-config.ts"

/** Where a socket lives: QEMU `-chardev socket,path=…` (UNIX) or `host=…,port=…` (TCP). */
export type Endpoint = { readonly kind: "unix"; readonly path: string } | { readonly kind: "tcp"; readonly host: string; readonly port: number }

export interface QmpConfig {
  readonly endpoint: Endpoint
  /** The virtserialport `-device … id=` (VSERPORT_CHANGE names the device, not the chardev). */
  readonly device: string
  /** The chardev id whose `frontend-open` query-chardev reports; discovered with qom-get when absent. */
  readonly chardev: string | undefined
}

export interface VmConfig {
  readonly id: string
  /** Where the entry is in the file (`vms[2]`): config errors and --check name keys under it. Not part of what a reload compares. */
  readonly at: string
  readonly chardev: Endpoint
  readonly qmp: QmpConfig | undefined
  /** The tunnel URL, `{vm}` already substituted. */
  readonly url: string
  /** The token file, `{vm}` already substituted. */
  readonly tokenFile: string
}

export interface Limits {
  /** Unacknowledged agent bytes kept for replay; when full the bridge stops reading the chardev. */
  readonly retainBytes: number
  /** Largest guest-bound message (chunked bytes) buffered for one port before it is written whole. */
  readonly maxGuestMessageBytes: number
  /** All guest-bound bytes held for one VM (partial + complete, both ports). */
  readonly guestBufferBytes: number
  /** Bytes handed to the WebSocket and not yet flushed; above it the bridge stops sending. */
  readonly linkBufferBytes: number
  /** Largest agent-bytes payload per `data` frame. */
  readonly frameBytes: number
}

export interface BridgeConfig {
  readonly bridge: string
  readonly metricsPort: number | undefined
  readonly limits: Limits
  readonly reconnect: { readonly baseMs: number; readonly capMs: number }
  readonly pingIntervalMs: number
  /** The VMs whose entries are valid. */
  readonly vms: ReadonlyArray<VmConfig>
  /** VMs learnt from libvirt besides (or instead of) `vms` (libvirt.ts; docs/operations.md, "libvirt"). */
  readonly libvirt?: LibvirtConfig
  /** The entries that are not: each marks its VM failed while the others run (docs/operations.md, "Per-VM and global errors"). */
  readonly failed: ReadonlyArray<VmFailure>
}

/**
 * A VM the bridge cannot run: a bad `vms[]` entry (found by the parser) or an unreadable token file (found at start and
 * reload). `vm` is the entry's id, or its place (`vms[3]`) when the id itself is missing, bad or a duplicate.
 */
export interface VmFailure {
  readonly vm: string
  readonly key: string
  readonly detail: string
}

const MiB = 1024 * 1024
/** Policy's largest message (128 MiB) once chunked in 2048-byte pieces with 8-byte headers, rounded up. */
const DEFAULT_MAX_GUEST_MESSAGE = 129 * MiB

export const defaultLimits: Limits = {
  retainBytes: 8 * MiB,
  maxGuestMessageBytes: DEFAULT_MAX_GUEST_MESSAGE,
  guestBufferBytes: DEFAULT_MAX_GUEST_MESSAGE + 8 * MiB,
  linkBufferBytes: 1 * MiB,
  frameBytes: 256 * 1024,
}

export class ConfigError extends Error {
  readonly reason = "ConfigInvalid" as const
  constructor(
    readonly key: string,
    readonly detail: string,
  ) {
    super(`${key}: ${detail}`)
  }
}

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

const onlyKeys = (obj: Json, at: string, allowed: ReadonlyArray<string>): void => {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new ConfigError(join(at, k), `unknown key (allowed: ${allowed.join(", ")})`)
  }
}

const join = (at: string, key: string): string => (at === "" ? key : `${at}.${key}`)

const str = (obj: Json, at: string, key: string, required: boolean): string | undefined => {
  const v = obj[key]
  if (v === undefined) {
    if (required) throw new ConfigError(join(at, key), "is required")
    return undefined
  }
  if (typeof v !== "string" || v.trim() === "") throw new ConfigError(join(at, key), "must be a non-empty string")
  return v
}

const int = (obj: Json, at: string, key: string, min: number, max: number): number | undefined => {
  const v = obj[key]
  if (v === undefined) return undefined
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(join(at, key), `must be an integer in [${min}, ${max}]`)
  }
  return v
}

/** `unix:/p`, `/p`, `./p` → UNIX; `tcp:h:p`, `h:p`, `[::1]:p` → TCP. */
export const parseEndpoint = (text: string, key: string): Endpoint => {
  let rest = text
  if (rest.startsWith("unix:")) return unixPath(rest.slice(5), key)
  if (rest.startsWith("tcp:")) rest = rest.slice(4)
  else if (rest.includes("/")) return unixPath(rest, key)
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(rest)
  const port = m === null ? NaN : Number(m[3])
  if (m === null || port < 1 || port > 65535) {
    throw new ConfigError(key, `"${text}" is neither a UNIX socket path (with a "/") nor host:port`)
  }
  return { kind: "tcp", host: m[1] ?? m[2] ?? "", port }
}

const unixPath = (path: string, key: string): Endpoint => {
  if (path === "") throw new ConfigError(key, "empty UNIX socket path")
  // sockaddr_un.sun_path is 108 bytes on Linux, NUL included.
  if (new TextEncoder().encode(path).length > 107) throw new ConfigError(key, `UNIX socket path longer than 107 bytes: ${path}`)
  return { kind: "unix", path }
}

const parseUrl = (template: string, vm: string, key: string): string => {
  const url = template.replaceAll("{vm}", encodeURIComponent(vm))
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ConfigError(key, `"${template}" is not a URL`)
  }
  if (parsed.protocol !== "wss:" && parsed.protocol !== "ws:") throw new ConfigError(key, `must be a ws:// or wss:// URL, got ${parsed.protocol}`)
  if (parsed.username !== "" || parsed.password !== "") throw new ConfigError(key, "must not carry credentials (use tokenFile)")
  return url
}

const parseQmp = (v: unknown, at: string): QmpConfig | undefined => {
  if (v === undefined) return undefined
  if (!isObject(v)) throw new ConfigError(at, "must be an object { socket, device, chardev? }")
  onlyKeys(v, at, ["socket", "device", "chardev"])
  return {
    endpoint: parseEndpoint(str(v, at, "socket", true)!, join(at, "socket")),
    device: str(v, at, "device", true)!,
    chardev: str(v, at, "chardev", false),
  }
}


const parseVm = (v: unknown, at: string, host: { edge: string | undefined; tokenFile: string | undefined }): VmConfig => {
  if (!isObject(v)) throw new ConfigError(at, "must be an object { id, chardev, qmp?, edge?, tokenFile? }")
  onlyKeys(v, at, ["id", "chardev", "qmp", "edge", "tokenFile"])
  const id = str(v, at, "id", true)!
  if (!NAME_PATTERN.test(id)) throw new ConfigError(join(at, "id"), `"${id}" must match ${NAME_PATTERN.source} (the token's vm claim)`)
  const edge = str(v, at, "edge", false) ?? host.edge
  if (edge === undefined) throw new ConfigError(join(at, "edge"), "is required (here or at the top level)")
  // Bridge tokens name one VM, so a host-wide tokenFile is a template: "/etc/vdrelay/tokens/{vm}.token".
  const tokenFile = (str(v, at, "tokenFile", false) ?? host.tokenFile)?.replaceAll("{vm}", id)
  if (tokenFile === undefined) throw new ConfigError(join(at, "tokenFile"), "is required (here or at the top level)")
  return {
    id,
    at,
    chardev: parseEndpoint(str(v, at, "chardev", true)!, join(at, "chardev")),
    qmp: parseQmp(v.qmp, join(at, "qmp")),
    url: parseUrl(edge, id, v.edge !== undefined ? join(at, "edge") : "edge"),
    tokenFile,
  }
}

const parseLimits = (v: unknown): Limits => {
  if (v === undefined) return defaultLimits
  if (!isObject(v)) throw new ConfigError("limits", "must be an object")
  onlyKeys(v, "limits", Object.keys(defaultLimits))
  const limits: Limits = {
    retainBytes: int(v, "limits", "retainBytes", 64 * 1024, 1024 * MiB) ?? defaultLimits.retainBytes,
    maxGuestMessageBytes: int(v, "limits", "maxGuestMessageBytes", 64 * 1024, 4096 * MiB) ?? defaultLimits.maxGuestMessageBytes,
    guestBufferBytes: int(v, "limits", "guestBufferBytes", 64 * 1024, 8192 * MiB) ?? defaultLimits.guestBufferBytes,
    linkBufferBytes: int(v, "limits", "linkBufferBytes", 64 * 1024, 256 * MiB) ?? defaultLimits.linkBufferBytes,
    frameBytes: int(v, "limits", "frameBytes", 1024, MAX_FRAME_DATA_BYTES) ?? defaultLimits.frameBytes,
  }
  if (limits.guestBufferBytes < limits.maxGuestMessageBytes) {
    throw new ConfigError("limits.guestBufferBytes", "must be at least limits.maxGuestMessageBytes")
  }
  return limits
}

/** The entry's id if it has a usable one (to name a failed entry by its VM rather than its place). */
const idOf = (v: unknown): string | undefined => (isObject(v) && typeof v.id === "string" && NAME_PATTERN.test(v.id) ? v.id : undefined)

/**
 * Parses the config file's text. Throws ConfigError (never anything else) when the file as a whole is unusable: not
 * JSON, an unknown top-level key, no `vms` array (or an empty one), a bad top-level `edge`, `limits`, `reconnect`,
 * `pingIntervalMs`, `metricsPort` or `bridge`. A bad `vms[]` entry does not throw: it lands in `failed` and the other
 * VMs run.
 */
export const parseConfig = (text: string, defaultName: string): BridgeConfig => {
  let root: unknown
  try {
    root = JSON.parse(text)
  } catch (e) {
    throw new ConfigError("(file)", `not valid JSON: ${(e as Error).message}`)
  }
  if (!isObject(root)) throw new ConfigError("(file)", "must be a JSON object")
  onlyKeys(root, "", ["bridge", "edge", "tokenFile", "metricsPort", "limits", "reconnect", "pingIntervalMs", "vms", "libvirt"])
  const host = { edge: str(root, "", "edge", false), tokenFile: str(root, "", "tokenFile", false) }
  // The relay's URL is the whole host's: a bad one is global, not a fault of the first VM that uses it.
  if (host.edge !== undefined) parseUrl(host.edge, "vm", "edge")
  const libvirt = parseLibvirt(root.libvirt, host, (key, detail) => {
    throw new ConfigError(key, detail)
  })
  // With libvirt the VMs come from the host's domains: a `vms` list is then optional.
  const vmsRaw = root.vms ?? (libvirt !== undefined ? [] : undefined)
  if (!Array.isArray(vmsRaw) || (vmsRaw.length === 0 && libvirt === undefined)) throw new ConfigError("vms", "must be a non-empty array of VMs (or set libvirt)")
  const vms: Array<VmConfig> = []
  const failed: Array<VmFailure> = []
  const seen = new Map<string, string>()
  vmsRaw.forEach((v, i) => {
    const at = `vms[${i}]`
    let vm: VmConfig
    try {
      vm = parseVm(v, at, host)
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      const id = idOf(v)
      // A duplicate's error goes to the later entry; the first one keeps the id.
      failed.push({ vm: id !== undefined && !seen.has(id) ? id : at, key: e.key, detail: e.detail })
      if (id !== undefined && !seen.has(id)) seen.set(id, at)
      return
    }
    const first = seen.get(vm.id)
    if (first !== undefined) {
      failed.push({ vm: at, key: `${at}.id`, detail: `"${vm.id}" duplicates ${first}.id` })
      return
    }
    seen.set(vm.id, at)
    vms.push(vm)
  })
  const rc = root.reconnect
  if (rc !== undefined && !isObject(rc)) throw new ConfigError("reconnect", "must be an object { baseMs, capMs }")
  if (rc !== undefined) onlyKeys(rc, "reconnect", ["baseMs", "capMs"])
  const baseMs = (rc && int(rc, "reconnect", "baseMs", 10, 60_000)) ?? 250
  const capMs = (rc && int(rc, "reconnect", "capMs", 100, 3_600_000)) ?? 30_000
  if (capMs < baseMs) throw new ConfigError("reconnect.capMs", "must be at least reconnect.baseMs")
  return {
    bridge: str(root, "", "bridge", false) ?? defaultName,
    metricsPort: int(root, "", "metricsPort", 0, 65535),
    limits: parseLimits(root.limits),
    reconnect: { baseMs, capMs },
    pingIntervalMs: int(root, "", "pingIntervalMs", 1000, 600_000) ?? 20_000,
    vms,
    failed,
    ...(libvirt !== undefined ? { libvirt } : {}),
  }
}
