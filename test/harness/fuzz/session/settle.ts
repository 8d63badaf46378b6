// End of a session fuzz program: settle (consoles give up what they were sending and grant credit, the bridge comes
// back and confirms every guest-bound write), then the oracles that need a quiet session (every message a console
// sent was answered; content relayed unaltered and only from controllers), then a liveness probe: a fresh agent
// connection and a fresh console must work end to end whatever the program did (DESIGN invariant 6: never wedged).
import { defaultPolicy } from "../../../../src/link/types.ts"
import { encodeMonitorsConfig } from "../../../../src/protocol/codec-display.ts"
import { encodeChunkHeader, encodeMessageHeader } from "../../../../src/protocol/header.ts"
import { check } from "../engine.ts"
import { concat } from "../gen-messages.ts"
import { fnv } from "../reference.ts"
import { announce, CLIENT_CAPS, grantCredit } from "./ops.ts"
import type { ClientView } from "./client-view.ts"
import type { SessionWorld } from "./world.ts"

const RELAY_MADE_TO_CLIENTS = new Set([6, 11])
/** What the relay itself writes on the client port: its ANNOUNCE, FILE_XFER_STATUS cancelling a departed console's transfers. */
const RELAY_MADE_TO_AGENT = new Set([6, 11])

/** Grants credit the way the SDK does, until the relay has nothing more to send this console. */
const drain = (w: SessionWorld, v: ClientView): void => {
  for (let i = 0; i < 1000 && v.consumed > 0 && !v.closed; i++) grantCredit(w, v)
}

export const settle = (w: SessionWorld): void => {
  for (const v of w.live()) {
    if (v.openOut !== null) {
      v.pending.delete(v.openOut)
      w.clientSends(v, { t: "abort", id: v.openOut })
    }
  }
  if (!w.bridgeUp) w.bridgeHello(w.epoch, true, "open")
  if (w.bridgeUp) w.bridgeFrame({ t: "wrote", epoch: w.epoch, pos: w.guest.wpos })
  for (const v of w.live()) drain(w, v)
  if (!w.bridgeUp) return
  for (const v of w.live()) check(v.pending.size === 0, `client ${v.id}: message(s) ${[...v.pending].join(",")} never answered (silently lost)`)
}

export const checkContent = (w: SessionWorld): void => {
  if (!w.taintedEver) {
    const sent = new Set(w.sentToAgent.map((m) => `${m.type}:${m.hash}`))
    for (const v of w.clients.values())
      for (const m of v.completed)
        if (!RELAY_MADE_TO_CLIENTS.has(m.type)) check(sent.has(`${m.type}:${m.hash}`), `client ${v.id} received a type ${m.type} message the agent never sent`)
  }
  for (const g of w.guest.messages) {
    if (g.port === 2) check(g.type === 1 || g.type === 13, `type ${g.type} written on the server port`)
  }
  if (w.clientTainted) return
  // Whole-stream: each console's messages reach the agent at most once and in the order it sent them (by key; the
  // consoles number them 1, 2, 3… unless hostile frames were sent).
  const lastId = new Map<string, number>()
  for (const g of w.guest.messages) {
    if (g.key === undefined) continue
    const before = lastId.get(g.key.origin)
    check(before === undefined || g.key.id > before, `${g.key.origin} message ${g.key.id} reached the agent after its message ${before}`)
    lastId.set(g.key.origin, g.key.id)
  }
  // Content, counted: a message reaches the agent no more often than controllers sent it (a duplicate shows here
  // even if the relay dropped its key).
  const byController = new Map<string, number>()
  for (const m of w.sentByClients) if (m.controller) byController.set(`${m.type}:${m.hash}`, (byController.get(`${m.type}:${m.hash}`) ?? 0) + 1)
  for (const g of w.guest.messages) {
    if (g.port !== 1 || RELAY_MADE_TO_AGENT.has(g.type)) continue
    const k = `${g.type}:${fnv(g.payload)}`
    const n = byController.get(k) ?? 0
    check(n > 0, n === 0 && [...w.sentByClients].some((m) => m.controller && `${m.type}:${m.hash}` === k) ? `a type ${g.type} message reached the agent more often than controllers sent it (a duplicate)` : `a type ${g.type} message reached the agent that no controller sent`)
    byController.set(k, n - 1)
  }
}

/**
 * Same-epoch liveness: when the agent stream is clean (only whole, valid messages so far, whatever else happened:
 * restarts, tunnel drops, resumes), a REPLY the agent sends now reaches every console still there.
 */
export const liveInEpoch = (w: SessionWorld): void => {
  if (w.tainted || !w.bridgeUp || !w.state.chardev || w.state.port === "closed") return
  w.feed({ _tag: "PolicyChanged", now: w.now, policy: defaultPolicy })
  for (const v of w.live()) grantCredit(w, v)
  const reply = Uint8Array.of(3, 0, 0, 0, 1, 0, 0, 0)
  w.agentSends(concat([encodeChunkHeader({ port: 1, size: 28 }), encodeMessageHeader({ type: 3, size: 8 }), reply]), false)
  for (const v of w.live()) drain(w, v)
  w.f.add("live-in-epoch")
  for (const v of w.live())
    if (v.welcomed) check(v.completed.some((m) => m.type === 3 && m.hash === fnv(reply)), `client ${v.id} did not receive the agent's REPLY in the same epoch (messages silently dropped)`)
}

/** A fresh agent connection and a fresh controller: an agent REPLY reaches the console, a MONITORS_CONFIG the agent. */
export const probe = (w: SessionWorld): void => {
  w.feed({ _tag: "PolicyChanged", now: w.now, policy: defaultPolicy })
  w.bridgeHello(w.epoch === 424242 ? 424243 : 424242, true, "open", 0)
  check(w.bridgeUp, "the probe's bridge hello was refused")
  announce(w, true)
  const v = w.join("controller", "controller", CLIENT_CAPS)
  check(!v.closed && v.role === "controller", "the probe console could not join as controller")
  const reply = Uint8Array.of(2, 0, 0, 0, 1, 0, 0, 0)
  w.agentSends(concat([encodeChunkHeader({ port: 1, size: 28 }), encodeMessageHeader({ type: 3, size: 8 }), reply]), false)
  drain(w, v)
  check(v.completed.some((m) => m.type === 3 && m.hash === fnv(reply)), "the probe console did not receive the agent's REPLY (session wedged)")
  const mc = encodeMonitorsConfig({ _tag: "MonitorsConfig", flags: 1, monitors: [{ height: 768, width: 1024, depth: 32, x: 0, y: 0 }] })
  if (mc._tag !== "Ok") throw new Error("probe message does not encode")
  const id = v.nextId++
  w.clientSends(v, { t: "msg", id, type: 2, size: mc.value.length, data: mc.value, end: true })
  check(w.guest.messages.some((g) => g.port === 1 && g.type === 2 && fnv(g.payload) === fnv(mc.value)), "the probe's MONITORS_CONFIG never reached the agent (session wedged)")
  w.bridgeFrame({ t: "wrote", epoch: w.epoch, pos: w.guest.wpos })
  check(v.answers.get(id)?.[0] === "ack", `the probe's message was answered ${v.answers.get(id)?.join(",") ?? "never"}`)
  // The new agent connection ended every agent message of the old one: none may stay half received (torn).
  for (const c of w.live()) {
    drain(w, c)
    check(c.open.size === 0, `client ${c.id} holds message(s) ${[...c.open.keys()].join(",")} never completed nor aborted`)
  }
}
