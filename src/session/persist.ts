// The durable part of the state (PersistedState) and the per-WebSocket attachments, built from the live state.
import type { ClientSide, SessionState } from "./state.ts"
import type { BridgeLinkAttachment, ClientLinkAttachment, PersistedState } from "./types.ts"
import { inflightOf } from "./guest-out.ts"
import { persistedSeats } from "./seats.ts"
import { persistUnconfirmed } from "./confirms.ts"

/** Attachments list at most this many in-flight ids one by one; a longer backlog is written as runs of ids. */
const MAX_INFLIGHT_IDS = 64
/** Runs kept when ids are not consecutive (only a client that numbers its messages erratically has that many). */
const MAX_INFLIGHT_RUNS = 48

/** Every in-flight id must survive a restart, or its sender never hears about it (DESIGN invariant 1). */
const inflightFields = (ids: ReadonlyArray<number>): Pick<ClientLinkAttachment, "inflight" | "inflightRuns"> => {
  if (ids.length <= MAX_INFLIGHT_IDS) return { inflight: [...ids] }
  const runs: Array<[number, number]> = []
  for (const id of [...ids].sort((x, y) => x - y)) {
    const last = runs[runs.length - 1]
    if (last !== undefined && id === last[1] + 1) last[1] = id
    else if (last === undefined || id !== last[1]) runs.push([id, id])
  }
  return { inflight: [], inflightRuns: runs.slice(-MAX_INFLIGHT_RUNS) }
}

/** The in-flight ids an attachment carries, whichever way they were written. */
export const inflightIds = (a: ClientLinkAttachment): number[] => {
  const ids = [...a.inflight]
  for (const [first, last] of a.inflightRuns ?? []) for (let id = first; id <= last; id++) ids.push(id)
  return ids
}

export const persistedOf = (s: SessionState): PersistedState => ({
  version: 1,
  session: s.session,
  policy: s.policy,
  agentCaps: s.rawCaps === null ? null : [...s.rawCaps],
  epoch: s.epoch,
  agentAck: s.stream.acked,
  nextSeq: s.seqLease,
  agentResume: s.stream.ackedResume,
  counters: { ...s.counters },
  seats: persistedSeats(s),
  ...(s.handover !== null && s.handover !== undefined ? { handover: s.handover } : {}),
})

export const clientAttachment = (s: SessionState, c: ClientSide): ClientLinkAttachment => ({
  kind: "client",
  client: c.id,
  role: c.role,
  maxRole: c.maxRole,
  caps: [...c.caps],
  joinedAt: c.joinedAt,
  partialIn: c.inMsg === null ? null : { id: c.inMsg.id, told: c.inMsg.mode === "drop" },
  creditOwed: c.creditOwed,
  ...inflightFields(inflightOf(s, c.id)),
  lastEpoch: c.lastEpoch,
  lastPos: c.lastPos,
  partialSeq: c.partialSeq,
  ...(c.confirms ? { confirms: true } : {}),
  ...(c.hadEpoch === c.lastEpoch && c.hadPos === c.lastPos ? {} : { had: [c.hadEpoch, c.hadPos] as const }),
  ...persistUnconfirmed(c.unconfirmed),
  credit: c.credit,
  ...(c.token === "" ? {} : { resumeToken: c.token }),
  ...(c.origin === "" ? {} : { origin: c.origin }),
  inflightEpoch: s.epoch,
  ...(c.owed.size === 0 ? {} : { owed: [...c.owed].sort((x, y) => x - y).slice(0, 32) }),
})

export const bridgeAttachment = (s: SessionState): BridgeLinkAttachment => ({
  kind: "bridge",
  bridge: s.bridge?.id ?? "",
  epoch: s.epoch,
  chardev: s.chardev,
  port: s.port,
  wpos: s.guest.wpos,
  wrote: s.guest.wrote,
  partialOut: s.guest.stream === null ? null : { client: s.guest.stream.client, id: s.guest.stream.id },
})
