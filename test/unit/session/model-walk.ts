// A seeded random walk over the session actor (joins, leaves, takeovers, partial messages on every link, client
// resumes with fresh, expired, reused and half-open tokens and SDK-like resends, agent attach/detach/restart, tunnel
// drop/resume, actor restarts that keep the links, crashes that lose the frames last handed to some consoles, policy
// changes, garbage), checking the invariants of
// DESIGN.md after every step against the peers modelled in sim.ts. Reproducible: the seed is the whole input.
import { MessageType } from "../../../src/protocol/constants.ts"
import { defaultPolicy, type RelayToClient } from "../../../src/link/types.ts"
import type { Written } from "./peers.ts"
import { Sim, announce, bytes, concat, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

export const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const fnv = (b: Uint8Array): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 16777619)
  return h >>> 0
}
const key = (type: number, p: Uint8Array): string => `${type}:${p.length}:${fnv(p)}`

export const LIMITS = {
  agentWindow: 8 * 1024,
  clientQueueBytes: 6 * 1024,
  clientCredit: 8 * 1024,
  initialClientCredit: 3 * 1024,
  storeAndForwardBytes: 1500,
  clientFragmentBytes: 700,
  bridgeWriteBytes: 2 * 2056,
  guestWindow: 6 * 1024,
  bridgeGraceMs: 50,
  clientGraceMs: 60,
}

const AGENT_CAPS = [SPICE_VDAGENT_CAPS]

interface Pending {
  readonly client: string
  readonly id: number
  readonly type: number
  readonly payload: Uint8Array
  sent: number
  readonly frag: number
  readonly asController: boolean
}

export interface WalkResult {
  readonly steps: number
  readonly failures: string[]
  /** The simulation, for inspecting a failure. */
  readonly sim: Sim
  /** Resumes that kept a seat. */
  readonly resumes: number
  /** Messages a crash lost in a console's socket that the oracle then required on its resumed link. */
  readonly lostJudged: number
  /** Resumed consoles the oracle required to have what the agent said after a crash, before they were back. */
  readonly gapJudged: number
}

/**
 * The whole-stream oracle on what reached the agent: every client message (named by its key) written at most once and,
 * per console, in the order it sent them. Returns the violations.
 */
export const writtenOutOfOrder = (written: ReadonlyArray<Written>): string[] => {
  const last = new Map<string, number>()
  const out: string[] = []
  for (const m of written) {
    if (m.key === undefined) continue
    const before = last.get(m.key.origin)
    if (before !== undefined && m.key.id <= before)
      out.push(`${m.key.origin} message ${m.key.id} written after its message ${before}: ${m.key.id === before ? "a duplicate" : "out of order"}`)
    last.set(m.key.origin, Math.max(before ?? -1, m.key.id))
  }
  return out
}

export interface WalkOptions {
  /** false: a bridge that writes a resent message again (the defect the oracles must catch). */
  readonly bridgeDedupe?: boolean
  /** false: consoles that do not confirm (`hello.confirms`), as before confirmations existed. */
  readonly confirms?: boolean
  /** false: a resuming console says no `lastSeq` (a defect: it then gets again what it had). */
  readonly lastSeq?: boolean
  /**
   * false: seats whose links a crash closed do not hold the agent stream (a defect: what the agent says between the
   * bridge's return and the console's goes to nobody).
   */
  readonly crashedSeatsHold?: boolean
}

/**
 * Runs `steps` random actions; returns the first invariant violations found (empty when all held). Besides restarts
 * that keep the links (hibernation) it crashes the relay: the frames it handed to some consoles last die with their
 * sockets. The console-side oracle follows each console across its resumed links: an agent message the agent said
 * once reaches it at most once, and one the crash lost in its socket, or said after the crash before it was back, reaches
 * it once it resumed its seat.
 */
export const walk = (seed: number, steps: number, o: WalkOptions = {}): WalkResult => {
  const rnd = mulberry32(seed)
  const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(rnd() * xs.length)]!
  const int = (n: number): number => Math.floor(rnd() * n)
  const sim = new Sim({ limits: LIMITS, split: 1 + int(3000), policy: { maxClipboardBytes: 20_000 }, confirms: o.confirms ?? true })
  /** Each link's console (links chained by resumes that kept the seat), and consoles that once claimed too little. */
  const consoleOf = new Map<string, string>()
  const dishonest = new Set<string>()
  /** Links whose seat a later link resumed (their lost frames are that console's to get again). */
  const resumedFrom = new Set<string>()
  sim.bridge.dedupe = o.bridgeDedupe ?? true
  const failures: string[] = []
  const sentToAgent = new Map<string, number>() // content key → count, whole messages sent by a controller
  const agentSaid = new Set<string>()
  const saidTimes = new Map<string, number>()
  const pending: Pending[] = []
  const everController = new Set<string>()
  /** Ids each client sent whole (not given up): each must end with exactly one ack or notice. */
  const whole = new Map<string, number[]>()
  const sentWhole = (client: string, id: number): void => void whole.set(client, [...(whole.get(client) ?? []), id])
  /** What each client sent per id (an SDK resends unanswered ones after a resume, with the same ids). */
  const bodies = new Map<string, Map<number, { type: number; payload: Uint8Array }>>()
  /** Links that ended (any cause), and when; seats of links gone before the latest restart forget their answers. */
  const gone: string[] = []
  const goneAt = new Map<string, number>()
  let lastRestart = -1
  let judgedLost = 0
  let judgedGap = 0
  let resumes = 0
  let nextClient = 0
  let epoch = 1
  let i = 0

  const live = (): string[] => [...sim.clients.values()].filter((c) => c.closed === null).map((c) => c.id)
  const fail = (what: string): void => {
    if (failures.length < 5) failures.push(`seed ${seed} step ${i}: ${what}`)
  }

  const sendWhole = (id: string, type: number, payload: Uint8Array): void => {
    const asController = sim.state.controller === id
    const frag = 1 + int(900)
    const stop = rnd() < 0.25 ? 1 + int(2) : undefined
    const total = Math.max(1, Math.ceil(payload.length / frag))
    if (asController && (stop === undefined || stop >= total)) sentToAgent.set(key(type, payload), (sentToAgent.get(key(type, payload)) ?? 0) + 1)
    const mid = sim.send(id, type, payload, stop === undefined ? { frag } : { frag, stopAfter: stop })
    if (!bodies.has(id)) bodies.set(id, new Map())
    bodies.get(id)!.set(mid, { type, payload })
    if (stop !== undefined && stop < total) pending.push({ client: id, id: mid, type, payload, sent: stop * frag, frag, asController })
    else sentWhole(id, mid)
  }

  const clientMessage = (id: string): void => {
    const tag = u32le(fnv(new Uint8Array([int(256), int(256), int(256), i & 0xff])))
    switch (int(7)) {
      case 0: return sendWhole(id, MessageType.ClipboardGrab, concat([u32le(0, 0), u32le(1), tag.subarray(0, 0)]))
      case 1: return sendWhole(id, MessageType.Clipboard, concat([u32le(0, 1), tag, bytes(int(4000), i)]))
      case 2: return sendWhole(id, MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, int(100))]))
      case 3: return sendWhole(id, MessageType.MonitorsConfig, concat([u32le(17 + int(5), 0), bytes(20 * 17)]))
      case 4: return sendWhole(id, MessageType.FileXferStart, concat([u32le(int(1000)), new TextEncoder().encode(`[vdagent-file-xfer]\nname=f${i}\nsize=3\n\0`)]))
      case 5: return sendWhole(id, MessageType.ClientDisconnected, new Uint8Array(0))
      default: return sendWhole(id, MessageType.AnnounceCapabilities, announce(true, [0x1000 + int(4096)]))
    }
  }

  const agentMessage = (): void => {
    const r = int(10)
    const [type, payload] =
      r < 3 ? [MessageType.Reply, u32le(2, 1 + int(2))] :
      r < 5 ? [MessageType.Clipboard, concat([u32le(0, 1), bytes(int(12_000), i)])] :
      r < 6 ? [MessageType.ClipboardGrab, u32le(0, int(9), 1)] :
      r < 7 ? [MessageType.FileXferStatus, u32le(int(9), 0)] :
      r < 8 ? [MessageType.AnnounceCapabilities, announce(rnd() < 0.3, AGENT_CAPS)] :
      [MessageType.MonitorsConfig, bytes(int(300), i)]
    agentSaid.add(key(type, payload))
    saidTimes.set(key(type, payload), (saidTimes.get(key(type, payload)) ?? 0) + 1)
    sim.agentSays(type, payload, rnd() < 0.05 ? 2 : 1)
  }

  const leave = (id: string): void => {
    sim.leave(id, pick(["closed", "error", "error", "evicted", "slow-consumer"] as const))
    gone.push(id)
    goneAt.set(id, i)
  }

  /** A new link resumes `old`'s seat like the SDK: its lastSeq, then every message it had no answer for, same ids. */
  const resume = (old: string): void => {
    const prev = sim.clients.get(old)!
    const id = `c${nextClient++}`
    const maxRole = rnd() < 0.85 ? "controller" : "viewer"
    const role = maxRole === "controller" && rnd() < 0.8 ? "controller" : "viewer"
    const honest = rnd() < 0.8
    const lastSeq = o.lastSeq === false ? -1 : honest ? prev.lastWholeSeq() : prev.lastWholeSeq() - int(5)
    const wasLive = prev.closed === null
    const m = sim.resume(id, old, { role, maxRole, lastSeq })
    if (wasLive) {
      gone.push(old)
      goneAt.set(old, i)
    }
    const w = m.frames.find((f) => f.t === "welcome")
    if (w?.t !== "welcome" || w.resumed !== true) return
    resumes++
    const console = consoleOf.get(old) ?? old
    consoleOf.set(id, console)
    resumedFrom.add(old)
    if (!honest && o.lastSeq !== false) dishonest.add(console)
    m.nextId = prev.nextId
    for (const mid of whole.get(old) ?? []) {
      if (prev.sent.get(mid)!.fate.length > 0 || m.closed !== null) continue
      const b = bodies.get(old)!.get(mid)!
      m.nextId = mid
      // A seat restored from storage forgot its answers, so the relay writes its resends again: the bridge, which
      // remembers the keys it wrote, does not (no allowance for a second copy at the agent).
      sim.send(id, b.type, b.payload, { frag: 1 + int(900) })
      if (m.closed === null) sentWhole(id, mid)
      if (!bodies.has(id)) bodies.set(id, new Map())
      bodies.get(id)!.set(mid, b)
    }
    m.nextId = Math.max(m.nextId, prev.nextId)
  }

  /** Time past every seat's resume window, then the agent's bytes delivered, every console crediting and confirming. */
  const drainPastGrace = (): void => {
    sim.now += LIMITS.clientGraceMs
    sim.step({ _tag: "TimerFired" })
    for (let k = 0; k < 50 && sim.bridge.connected; k++) {
      sim.pump()
      for (const id of live()) {
        sim.credit(id, 1 << 30)
        if (o.confirms !== false) sim.got(id)
      }
    }
  }

  /**
   * Consoles come back at once, as the SDK does (the bridge before or after them), the replay runs, and each console
   * that resumed its seat in the same role has every message the crash lost in its socket, once.
   */
  const recoverFromCrash = (crashed: ReadonlyArray<string>): void => {
    const bridgeFirst = rnd() < 0.5
    // The agent may speak in the gap between the bridge's return and the consoles': every console resuming its seat
    // must still get what it said (a MonitorsConfig: every role receives one).
    let gapSaid: string | null = null
    if (bridgeFirst) {
      sim.attachBridge()
      if (rnd() < 0.7) {
        const payload = bytes(1 + int(300), i)
        gapSaid = key(MessageType.MonitorsConfig, payload)
        agentSaid.add(gapSaid)
        saidTimes.set(gapSaid, (saidTimes.get(gapSaid) ?? 0) + 1)
        sim.agentSays(MessageType.MonitorsConfig, payload)
        sim.pump()
      }
    }
    const back = new Map<string, string>()
    for (const old of crashed) {
      if (rnd() < 0.2) continue
      const before = nextClient
      resume(old)
      const id = `c${before}`
      const m = sim.clients.get(id)
      const w = m?.frames.find((f) => f.t === "welcome")
      if (m !== undefined && m.closed === null && w?.t === "welcome" && w.resumed === true) back.set(old, id)
    }
    if (!bridgeFirst) sim.attachBridge()
    // Seats that did not come back hold the replay for their resume window.
    drainPastGrace()
    for (const [old, id] of back) {
      const prev = sim.clients.get(old)!
      const m = sim.clients.get(id)!
      if (m.closed !== null || m.role !== prev.role || dishonest.has(consoleOf.get(id) ?? id)) continue
      const got = new Set(m.messages.map((x) => key(x.type, x.payload)))
      if (gapSaid !== null && saidTimes.get(gapSaid) === 1) {
        judgedGap++
        if (!got.has(gapSaid)) fail(`${id} (resuming ${old} after a crash) never got what the agent said before it was back (${gapSaid.slice(0, 24)})`)
      }
      for (const k of wholeLost(sim.lost.get(old) ?? []))
        if (saidTimes.get(k) === 1) {
          judgedLost++
          if (!got.has(k)) fail(`${id} (resuming ${old} after a crash) never got an agent message the crash lost in its socket (${k.slice(0, 24)})`)
        }
    }
  }

  const act = (): void => {
    const ids = live()
    const r = int(100)
    if (r < 8 || ids.length === 0) {
      const id = `c${nextClient++}`
      const role = rnd() < 0.5 ? "controller" : "viewer"
      sim.join(id, role, [int(1 << 20)], rnd() < 0.8 ? "controller" : "viewer")
    } else if (r < 12) leave(sim.state.controller !== null && rnd() < 0.4 ? sim.state.controller : pick(ids))
    else if (r < 14 && gone.length > 0) resume(rnd() < 0.8 ? gone[gone.length - 1 - int(Math.min(3, gone.length))]! : pick(gone))
    else if (r < 15) resume(pick(ids))
    else if (r < 16) sim.frame(pick(ids), { t: "control" })
    else if (r < 35) clientMessage(sim.state.controller !== null && rnd() < 0.8 ? sim.state.controller : pick(ids))
    else if (r < 42 && pending.length > 0) {
      const p = pending.splice(int(pending.length), 1)[0]!
      const c = sim.clients.get(p.client)!
      if (c.closed !== null) return
      if (rnd() < 0.3) sim.frame(p.client, { t: "abort", id: p.id })
      else {
        if (p.asController && sim.state.controller === p.client) sentToAgent.set(key(p.type, p.payload), (sentToAgent.get(key(p.type, p.payload)) ?? 0) + 1)
        sim.sendRest(p.client, p.id, p.payload, p.sent, p.frag)
        if (c.closed === null) sentWhole(p.client, p.id)
      }
    } else if (r < 47) sim.frame(pick(ids), { t: "mouse", x: int(2000), y: int(2000), buttons: int(8), display: 0 })
    else if (r < 55) {
      const id = pick(ids)
      sim.credit(id, 1 + int(20_000))
      if (o.confirms !== false && rnd() < 0.7 && sim.clients.get(id)!.closed === null) sim.got(id)
    }
    else if (r < 68) agentMessage()
    else if (r < 80) sim.pump(1 + int(20_000))
    else if (r < 85) { if (sim.bridge.connected) sim.wrote() }
    else if (r < 87) { if (sim.bridge.connected) sim.detachBridge(); else sim.attachBridge({ port: "unknown" }) }
    else if (r < 88) { if (sim.bridge.connected) sim.chardev(false) }
    else if (r < 89) { if (sim.bridge.connected) sim.chardev(true, ++epoch) }
    else if (r < 90) { if (sim.bridge.connected) sim.port(rnd() < 0.5) }
    else if (r < 91) { sim.now += 100; sim.step({ _tag: "TimerFired" }) }
    else if (r < 92) {
      if (sim.persisted === null) return
      if (rnd() < 0.5) sim.restart()
      else {
        // A crash: what the relay hands some consoles last dies with their sockets.
        for (const id of ids) if (rnd() < 0.5) sim.losing.add(id)
        agentMessage()
        sim.pump(1 + int(20_000))
        const crashed = live()
        for (const id of crashed) {
          gone.push(id)
          goneAt.set(id, i)
        }
        sim.crash()
        if (o.crashedSeatsHold === false) for (const [t, seat] of sim.state.seats) sim.state.seats.set(t, { ...seat, crashed: false })
        if (rnd() < 0.7) recoverFromCrash(crashed)
      }
      lastRestart = i
    }
    else if (r < 94) sim.step({ _tag: "PolicyChanged", policy: { ...defaultPolicy, maxClipboardBytes: 20_000, copyPaste: rnd() < 0.7, fileTransfer: rnd() < 0.7 } })
    else if (r < 95) sim.bridge.appendRaw(bytes(1 + int(60), i))
    else if (r < 96) {
      const id = pick(ids)
      sim.step({ _tag: "FrameRejected", from: { client: id }, detail: "garbage" })
      gone.push(id)
      goneAt.set(id, i)
    }
    else sim.pump(1 + int(5000))
  }

  sim.attachBridge()
  for (i = 0; i < steps && failures.length === 0; i++) {
    const persistedBefore = sim.persisted
    const heldDisconnects = heldCD(sim)
    sim.commands = [] // an action that steps nothing is checked against no commands, not the previous step's
    try {
      act()
    } catch (e) {
      fail(`threw: ${(e as Error).stack}`)
      break
    }
    for (const id of live()) if (sim.state.controller === id) everController.add(id)
    check(sim, failures.length === 0 ? fail : () => {}, persistedBefore, heldDisconnects)
  }
  // Quiesce: the bridge back, time past every grace period, everything written; then every whole message of a client
  // still connected has been answered exactly once (ack or notice): nothing silently dropped.
  if (failures.length === 0) {
    if (!sim.bridge.connected) sim.attachBridge()
    sim.now += 1000
    sim.step({ _tag: "TimerFired" })
    sim.wrote()
    sim.wrote()
    for (const id of live()) sim.credit(id, 1 << 30)
    // Past every seat's resume window: a replay held for a console that never came back goes to the others.
    drainPastGrace()
    for (const [client, ids] of whole) {
      const m = sim.clients.get(client)!
      if (m.closed !== null) continue
      for (const id of ids) if (m.sent.get(id)!.fate.length !== 1) fail(`${client} message ${id} answered ${m.sent.get(id)!.fate.length} times`)
    }
  }
  for (const v of writtenOutOfOrder(sim.agentGot())) fail(v)
  // Agent-side content: every port-1 message the agent got came whole from a controller, or from the relay itself.
  for (const m of sim.agentGot()) {
    if (m.port !== 1) continue
    const k = key(m.type, m.payload)
    const n = sentToAgent.get(k) ?? 0
    if (n > 0) sentToAgent.set(k, n - 1)
    else if (m.type === MessageType.FileXferStatus && m.payload.length === 8 && m.payload[4] === 1) continue // the relay cancelled a lost console's transfer
    else if (m.type !== MessageType.AnnounceCapabilities) fail(`agent got a port-1 message nobody sent whole as controller: type ${m.type} size ${m.payload.length}`)
  }
  // Per console, across its resumed links: an agent message said once arrives at most once; one that a crash lost in
  // the socket of a link whose seat was then resumed arrives again.
  const received = new Map<string, Map<string, number>>()
  for (const c of sim.clients.values()) {
    const console = consoleOf.get(c.id) ?? c.id
    const got = received.get(console) ?? new Map<string, number>()
    received.set(console, got)
    for (const m of c.messages) got.set(key(m.type, m.payload), (got.get(key(m.type, m.payload)) ?? 0) + 1)
  }
  for (const [console, got] of received) {
    if (dishonest.has(console)) continue
    for (const [k, n] of got) if (n > 1 && saidTimes.get(k) === 1) fail(`console ${console} got an agent message ${n} times (${k.slice(0, 24)})`)
  }
  for (const c of sim.clients.values())
    for (const m of c.messages) {
      if (m.type === MessageType.FileXferStatus || m.type === MessageType.AnnounceCapabilities) continue
      if (!agentSaid.has(key(m.type, m.payload))) fail(`${c.id} got a message the agent never sent: type ${m.type}`)
      if (!everController.has(c.id) && (m.type === MessageType.FileXferStatus || m.type === MessageType.Clipboard)) fail(`viewer ${c.id} got type ${m.type}`)
    }
  return { steps: i, failures, sim, resumes, lostJudged: judgedLost, gapJudged: judgedGap }
}

/** Content keys of the agent messages whose every frame was lost (a socket that died). */
const wholeLost = (frames: ReadonlyArray<RelayToClient>): string[] => {
  const msgs = new Map<number, { type: number; parts: Uint8Array[]; end: boolean }>()
  for (const f of frames) {
    if (f.t === "msg") msgs.set(f.seq, { type: f.type, parts: [f.data], end: f.end })
    else if (f.t === "more" && msgs.has(f.seq)) {
      const w = msgs.get(f.seq)!
      w.parts.push(f.data)
      w.end = f.end
    }
  }
  // A message over half the agent window is acknowledged as it streams and cannot be replayed (confirms.ts `replayable`).
  return [...msgs.values()].filter((w) => w.end && concat(w.parts).length <= LIMITS.agentWindow / 2).map((w) => key(w.type, concat(w.parts)))
}

const isCD = (port: number, data: Uint8Array): boolean => port === 2 && data.length === 28 && data[12] === MessageType.ClientDisconnected

/** CLIENT_DISCONNECTED messages held while the tunnel is down (decided earlier, written when it is back). */
const heldCD = (sim: Sim): number => sim.state.guest.held.filter((w) => isCD(w.port, w.bytes)).length

/** Invariants checked after every step. */
const check = (sim: Sim, fail: (s: string) => void, persistedBefore: Sim["persisted"], heldBefore: number): void => {
  for (const t of sim.tornAnywhere()) fail(t)
  sim.violations.length = 0
  const s = sim.state
  const ctl = s.controller === null ? undefined : s.clients.get(s.controller)
  if (s.controller !== null && ctl?.role !== "controller") fail(`controller ${s.controller} is not a controlling member`)
  for (const c of s.clients.values()) if (c.role === "controller" && s.controller !== c.id) fail(`${c.id} controls beside ${s.controller}`)
  for (const c of s.clients.values()) {
    const cap = c.role === "viewer" ? LIMITS.clientQueueBytes : LIMITS.clientQueueBytes + LIMITS.agentWindow
    if (c.queued > cap) fail(`${c.id} queue ${c.queued} over its cap ${cap}`)
    if (c.inMsg !== null && c.inMsg.buf.length > LIMITS.storeAndForwardBytes) fail(`${c.id} stores ${c.inMsg.buf.length} bytes`)
    const m = sim.clients.get(c.id)
    if (m === undefined || m.closed !== null) fail(`state keeps departed client ${c.id}`)
    for (const [id, f] of m?.sent ?? []) if (f.fate.length > 1) fail(`${c.id} message ${id} answered twice: ${f.fate.join(",")}`)
  }
  // Seats: at most one holds control, and only while nobody controls; tokens are never shared.
  const holding = [...s.seats.values()].filter((x) => x.control)
  if (holding.length > 1 || (holding.length === 1 && s.controller !== null)) fail(`seat control held by ${holding.length} seats beside controller ${s.controller}`)
  const tokens = [...s.clients.values()].map((c) => c.token).filter((t) => t !== "")
  if (new Set(tokens).size !== tokens.length || tokens.some((t) => s.seats.has(t))) fail(`a resume token is shared: ${tokens.join(",")}`)
  if (s.seats.size > 32) fail(`${s.seats.size} seats kept`)
  const cdNow = sim.commands.filter((c) => c._tag === "SendToBridge" && c.frame.t === "write" && isCD(c.frame.port, c.frame.data)).length + heldCD(sim)
  if (holding.length > 0 && cdNow > heldBefore) fail("CLIENT_DISCONNECTED written (or held) while a seat holds control")
  // Held guest-bound bytes: only while the tunnel is down, within their cap (the controller's credit + one message).
  if (s.bridge !== null && s.guest.held.length > 0) fail(`${s.guest.held.length} writes held while a bridge is attached`)
  const clientHeld = s.guest.held.reduce((n, w) => n + (w.from === null ? 0 : w.bytes.length), 0)
  if (clientHeld !== s.guest.heldBytes || clientHeld > LIMITS.clientCredit + LIMITS.storeAndForwardBytes) fail(`${clientHeld} bytes of client messages held (counted ${s.guest.heldBytes})`)
  // Attachments agree with the state after every step (a restart rebuilds from them).
  const ba = sim.attachments.get("bridge")
  if (s.bridge !== null && sim.bridge.connected && (ba?.kind !== "bridge" || ba.epoch !== s.epoch || ba.wpos !== s.guest.wpos || ba.wrote !== s.guest.wrote))
    fail(`bridge attachment ${JSON.stringify(ba && { ...ba, kind: ba.kind })} behind epoch ${s.epoch} wpos ${s.guest.wpos} wrote ${s.guest.wrote}`)
  for (const c of s.clients.values()) {
    const a = sim.attachments.get(c.id)
    if (a?.kind === "client" && a.credit !== c.credit) fail(`${c.id} attachment credit ${a.credit}, state ${c.credit}`)
  }
  if (s.stream.pos - s.stream.acked > LIMITS.agentWindow * 1.125 + 1) fail(`agent bytes unacked ${s.stream.pos - s.stream.acked}`)
  if (s.stream.tail.length > 27) fail(`resync tail ${s.stream.tail.length}`)
  if (s.guest.inflight.length > 10_000) fail(`inflight ${s.guest.inflight.length}`)
  // Persist precedes the ack it covers.
  let persisted = persistedBefore
  for (const cmd of sim.commands) {
    if (cmd._tag === "Persist") persisted = cmd.state
    if (cmd._tag === "SendToBridge" && cmd.frame.t === "ack" && (persisted === null || persisted.agentAck < cmd.frame.pos || persisted.epoch !== cmd.frame.epoch))
      fail(`ack ${cmd.frame.pos} before a Persist covering it`)
  }
}
