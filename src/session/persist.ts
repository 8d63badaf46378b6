// The durable part of the state (PersistedState) and the per-WebSocket attachments, built from the live state.
import type { ClientSide, SessionState } from "./state.ts"
import type { BridgeLinkAttachment, ClientLinkAttachment, PersistedState } from "./types.ts"
import { inflightOf } from "./guest-out.ts"
import { persistedSeats } from "./seats.ts"

/** Attachments carry at most this many in-flight ids (older ones are acked by the bridge long before, in practice). */
const MAX_INFLIGHT_IDS = 64

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
  inflight: inflightOf(s, c.id).slice(-MAX_INFLIGHT_IDS),
  lastEpoch: c.lastEpoch,
  lastPos: c.lastPos,
  partialSeq: c.partialSeq,
  ...(c.token === "" ? {} : { resumeToken: c.token }),
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
