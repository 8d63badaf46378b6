// Building a fresh session, and rebuilding one after hibernation or eviction from PersistedState plus the attachments
// of the WebSockets still open (spec §5.7 case 6). What lived only in memory is settled explicitly: the bridge is
// asked to replay agent bytes from the persisted position, half-streamed guest-bound messages are aborted and their
// senders told "resend", half-sent agent messages are aborted towards clients, credit is given back.
import { MAX_ORIGIN_LENGTH, type Policy } from "../link/types.ts"
import { Port } from "../protocol/constants.ts"
import { defaultLimits, type Limits } from "./limits.ts"
import type { ClientSide, SessionState } from "./state.ts"
import type { BridgeLinkAttachment, ClientLinkAttachment, PersistedState, SessionCommand } from "./types.ts"
import { newAgentStream, resumeStream } from "./agent-stream.ts"
import { syncAgentState } from "./agent-view.ts"
import { notice } from "./answers.ts"
import { enqueue } from "./client-queue.ts"
import { returnCredit } from "./credit.ts"
import { newGuestOut, restoreInflight, restorePositions, restoreUnsure, settleInflight } from "./guest-out.ts"
import { inflightIds } from "./persist.ts"
import { restoreSeats } from "./seats.ts"
import { upkeep } from "./step.ts"
import { holdReplay, restoreUnconfirmed } from "./confirms.ts"

export const initialSession = (opts: { session: string; policy: Policy; now: number; limits?: Partial<Limits> }): SessionState => {
  const limits = { ...defaultLimits, ...opts.limits }
  return {
    session: opts.session,
    limits,
    policy: { ...opts.policy },
    now: opts.now,
    counters: {},
    out: [],
    bridge: null,
    epoch: -1,
    chardev: false,
    port: "unknown",
    graceUntil: null,
    rewindTo: null,
    replayHold: false,
    told: false,
    rawCaps: null,
    capsSeen: false,
    stream: newAgentStream(limits, 0, "parse"),
    guest: newGuestOut(),
    nextSeq: 1,
    seqLease: 1,
    clients: new Map(),
    controller: null,
    seats: new Map(),
    timerAt: null,
    persistDirty: true,
  }
}

/** What the attachment says the console certainly has (ClientSide.hadEpoch, hadPos); absent: what was sent whole. */
const restoredHad = (a: ClientLinkAttachment): readonly [number, number] => {
  const h: unknown = a.had
  return Array.isArray(h) && h.length === 2 && h.every((n) => typeof n === "number" && Number.isSafeInteger(n)) ? (h as [number, number]) : [a.lastEpoch, a.lastPos]
}

const restoredClient = (s: SessionState, a: ClientLinkAttachment): ClientSide => {
  const [hadEpoch, hadPos] = restoredHad(a)
  return {
    id: a.client,
    origin: typeof a.origin === "string" && a.origin.length <= MAX_ORIGIN_LENGTH ? a.origin : "",
    role: a.role,
    maxRole: a.maxRole,
    caps: [...a.caps],
    joinedAt: a.joinedAt,
    items: [],
    head: 0,
    queued: 0,
    // What it had granted and the relay had not used (attachments written before it was kept: the initial credit).
    credit: validCredit(a.credit) ?? s.limits.initialClientCredit,
    lastEpoch: a.lastEpoch,
    lastPos: a.lastPos,
    hadEpoch,
    hadPos,
    partialSeq: a.partialSeq,
    confirms: a.confirms === true,
    sendingFrom: undefined,
    unconfirmed: restoreUnconfirmed(a.unconfirmed),
    inMsg: null,
    creditOwed: a.creditOwed,
    creditFree: 0,
    mouseNoticed: false,
    dirty: true,
    token: typeof a.resumeToken === "string" ? a.resumeToken : "",
    floorSeq: -1,
    answered: new Map(),
    xfers: new Set(),
    cancelled: new Set(),
    owed: new Set(Array.isArray(a.owed) ? a.owed.filter((id) => Number.isInteger(id)).slice(0, 32) : []),
    amnesicEpoch: null,
  }
}

const validHandover = (h: { readonly end: unknown; readonly wrote: unknown }): boolean =>
  typeof h.end === "number" && Number.isSafeInteger(h.end) && h.end >= 0 && typeof h.wrote === "number" && Number.isSafeInteger(h.wrote) && h.wrote >= 0

const validCredit = (n: unknown): number | undefined =>
  typeof n === "number" && Number.isSafeInteger(n) && Math.abs(n) <= 2 ** 31 ? n : undefined

export const restoreSession = (
  persisted: PersistedState,
  links: { readonly bridge?: BridgeLinkAttachment; readonly clients: ReadonlyArray<ClientLinkAttachment> },
  now: number,
  limits?: Partial<Limits>,
): { state: SessionState; commands: SessionCommand[] } => {
  const s = initialSession({ session: persisted.session, policy: persisted.policy, now, limits: limits ?? {} })
  s.counters = { ...persisted.counters }
  s.rawCaps = persisted.agentCaps === null ? null : [...persisted.agentCaps]
  s.capsSeen = s.rawCaps !== null
  s.nextSeq = s.seqLease = persisted.nextSeq
  s.epoch = persisted.epoch
  const b = links.bridge
  const sameEpoch = b === undefined || b.epoch === persisted.epoch
  if (sameEpoch) resumeStream(s, persisted.agentAck, persisted.agentResume)
  else {
    s.epoch = b.epoch
    s.stream = newAgentStream(s.limits, 0, "parse")
  }
  for (const a of links.clients) {
    const c = restoredClient(s, a)
    s.clients.set(c.id, c)
    if (c.role === "controller" && s.controller !== null) {
      c.role = "viewer"
      enqueue(s, c, { frame: { t: "role", role: "viewer" }, bytes: 0 })
    }
    if (c.role === "controller") s.controller = c.id
  }
  if (b !== undefined) {
    s.bridge = { id: b.bridge, dirty: true }
    s.chardev = b.chardev
    s.port = b.port
    restorePositions(s, b)
    if (b.partialOut !== null) s.out.push({ _tag: "SendToBridge", frame: { t: "abort", epoch: s.epoch, pos: b.wpos, port: Port.Client } })
    s.out.push({ _tag: "SendToBridge", frame: { t: "rewind", epoch: s.epoch, pos: s.stream.acked } })
    s.rewindTo = s.stream.acked
  } else restorePositions(s, null) // storage does not keep guest positions: the bridge's next hello tells them
  const lostHead = persisted.agentResume?._tag === "Mid" && persisted.agentResume.ports.some((p) => p.port === Port.Client)
  for (const a of links.clients) {
    const c = s.clients.get(a.client)!
    if (a.partialIn !== null) {
      if (!a.partialIn.told) notice(s, c, "resend", "the relay restarted while this message was arriving; send it again", a.partialIn.id)
      c.inMsg = { id: a.partialIn.id, type: 0, size: 0, received: 0, mode: "drop", buf: new Uint8Array(0), orphan: true }
    }
    // Without the bridge link its fate is learnt from the bridge's next hello (restoreUnsure), within a grace.
    for (const id of inflightIds(a))
      if (b !== undefined) restoreInflight(s, c.id, id)
      else restoreUnsure(s, c.id, id, typeof a.inflightEpoch === "number" ? a.inflightEpoch : persisted.epoch)
    if (a.partialSeq !== null) enqueue(s, c, { frame: { t: "abort", seq: a.partialSeq, reason: lostHead ? "dropped-by-disconnect" : "resend" }, bytes: 0 })
    c.creditFree = c.creditOwed
    returnCredit(s, c)
  }
  restoreSeats(s, persisted.seats ?? [], now, persisted.epoch)
  holdReplay(s)
  // A migration's handover of this epoch not yet continued: the destination's `continues` hello still continues it.
  const h = persisted.handover
  if (h !== undefined && h.epoch === s.epoch && validHandover(h)) s.handover = { ...h }
  // Without the bridge link a restart is a tunnel loss: an agent the persisted state knew (its caps) stays "connected"
  // for the bridge grace, so consoles see no flap and what they send is held, as in a blip (a relay restart does not
  // end the agent connection; the bridge's hello says whether it is still the same). Unsure messages are answered at
  // that hello, or when the grace ends.
  if (b === undefined && s.rawCaps !== null) {
    s.chardev = true
    s.port = "unknown"
  }
  if (b === undefined && (s.guest.inflight.length > 0 || s.rawCaps !== null)) s.graceUntil = now + s.limits.bridgeGraceMs
  settleInflight(s)
  syncAgentState(s, true)
  upkeep(s)
  const commands = s.out
  s.out = []
  return { state: s, commands }
}
