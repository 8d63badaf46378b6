// GET /v1/vms/{vm}/status and PUT /v1/vms/{vm}/policy, the operator API: the status document (links, agent, policy,
// counters) and the validation of a policy patch.
import type { Policy } from "../src/link/types.ts"
import type { PersistedState } from "../src/session/index.ts"
import { isSessionBridge, isSessionClient, readAttachment } from "./attachments.ts"
import type { ForwardedClaims } from "./forward.ts"
import type { SessionHost } from "./session-host.ts"

export interface VmStatus {
  readonly tenant: string
  readonly vm: string
  readonly session: string
  readonly agent: {
    /** A bridge link has said hello. */
    readonly bridge: boolean
    readonly bridgeName: string | null
    readonly chardev: boolean
    readonly port: string
    /** Agent caps as announced (null until the agent announced them). */
    readonly caps: ReadonlyArray<number> | null
    /** When the edge last answered the bridge link's heartbeat (ISO time; null: not since the link opened). */
    readonly bridgePing: string | null
  }
  readonly clients: { readonly controller: number; readonly viewer: number; readonly joining: number }
  readonly policy: Policy
  /** The session's durable counters (drops by reason, resets by cause, messages per direction...). */
  readonly counters: Readonly<Record<string, number>>
  /** The edge's counters: frames and bytes per link and direction, rejected frames, links opened and closed by cause. */
  readonly edge: Readonly<Record<string, number>>
}

export const statusOf = (
  claims: ForwardedClaims,
  p: PersistedState,
  sockets: ReadonlyArray<WebSocket>,
  host: SessionHost,
  pingAt: (ws: WebSocket) => Date | null,
): VmStatus => {
  const clients = { controller: 0, viewer: 0, joining: 0 }
  let bridge: ReturnType<typeof readAttachment> = undefined
  for (const ws of sockets) {
    if (!host.scopes.isOpen(ws)) continue
    const a = readAttachment(ws)
    if (isSessionClient(a)) clients[a.role]++
    else if (a?.kind === "pending-client" || a?.kind === "joined-client") clients.joining++
    else if (ws === host.bridge) bridge = a
  }
  const b = isSessionBridge(bridge) ? bridge : undefined
  return {
    tenant: claims.tenant,
    vm: claims.vm,
    session: p.session,
    agent: { bridge: host.bridge !== undefined, bridgeName: b?.bridge ?? null, chardev: b?.chardev ?? false, port: b?.port ?? "unknown", caps: p.agentCaps, bridgePing: host.bridge === undefined ? null : (pingAt(host.bridge)?.toISOString() ?? null) },
    clients,
    policy: p.policy,
    counters: p.counters,
    edge: { ...host.counters },
  }
}

const BOOLEAN_KEYS = ["copyPaste", "fileTransfer", "viewersSeeClipboard"] as const
const SIZE_KEYS = ["maxClipboardBytes", "maxMessageBytes"] as const

/** Applies a JSON patch of Policy fields; undefined when it has an unknown key or a value of the wrong type/range. */
export const mergePolicy = (current: Policy, patch: unknown): Policy | undefined => {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return undefined
  const out: Record<string, unknown> = { ...current }
  for (const [k, v] of Object.entries(patch)) {
    if ((BOOLEAN_KEYS as ReadonlyArray<string>).includes(k) && typeof v === "boolean") out[k] = v
    else if ((SIZE_KEYS as ReadonlyArray<string>).includes(k) && Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff) out[k] = v
    else return undefined
  }
  return out as unknown as Policy
}
