// One chaos round: a large message starts in the fault's direction, the fault lands when a random share of it has
// crossed the link under test, then the verdict: the message arrived whole or its loss was reported to the console
// that sent or asked for it (never torn, never silently lost); the chain recovers (clipboard both ways + a small file);
// and the real agent never lost sync.
import type { Fault } from "./faults.ts"
import { access, readFile } from "node:fs/promises"
import { join } from "node:path"
import { controller, fileBytes, healthy, roundTrip, syncErrors, withTimeout } from "./checks.ts"
import type { Console, Rig } from "./rig.ts"
import { until } from "./rig.ts"
import type { CutProxy } from "../cut-proxy.ts"

/**
 * whole: the message arrived whole where it is consumed; delivered: it reached the guest agent whole, which had
 * already dropped the paste waiting for it (its port reopened: the guest's own reset, as under QEMU); reported: it was
 * lost and the console that sent or asked for it was told; torn / silent: failures.
 */
export type Outcome = "whole" | "delivered" | "reported" | "torn" | "silent" | "none"

export interface RoundResult {
  readonly fault: string
  readonly survived: boolean
  readonly outcome: Outcome
  /** Share of the message that had crossed the link when the fault landed. */
  readonly at: number
  readonly problems: ReadonlyArray<string>
  readonly ms: number
  /** Log lines of every part during the round, kept for failed rounds (the post-mortem). */
  readonly logs?: string
}

type Settled<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: string }
const settle = <A>(p: Promise<A>): Promise<Settled<A>> => p.then((value) => ({ ok: true as const, value }), (e: unknown) => ({ ok: false as const, error: e instanceof Error ? e.message : String(e) }))

/** The counter that shows the message crossing the link the fault hits. */
const gauge = (rig: Rig, fault: Fault, c: Console): { proxy: CutProxy; dir: "up" | "down" } => {
  const g2c = fault.during === "guest→console"
  if (fault.name.startsWith("controller-") || fault.name.startsWith("client-")) return { proxy: c.proxy, dir: g2c ? "down" : "up" }
  return { proxy: rig.bridgeProxy, dir: g2c ? "up" : "down" }
}

/**
 * A guest app pastes. Right after the console's grab the session agent may not own the X selection yet, and xclip
 * then fails at once with nothing sent: that is retried (a paste before anything crossed is not the fault under test).
 */
const pasteWithRetry = async (rig: Rig, crossed: () => number): Promise<Settled<string>> => {
  for (let attempt = 1; ; attempt++) {
    const r = await settle(rig.agent.getClipboard({ timeoutMs: 60_000 }).then((b) => b.toString("utf8")))
    if (r.ok || crossed() > 0 || attempt === 5) return r
    await new Promise((done) => setTimeout(done, 200))
  }
}

/**
 * A file of `bytes` to the guest with the fault landing at `share` of it: done must mean byte-exact in the guest's
 * folder and in the guest stream; a failure must be reported to the console and leave no partial file in the guest.
 */
const fileRound = async (
  rig: Rig,
  fault: Fault,
  c: Console,
  share: number,
  bytes: number,
  proxy: CutProxy,
  dir: "up" | "down",
): Promise<{ outcome: Outcome; at: number; problems: string[] }> => {
  const problems: string[] = []
  const name = `chaos-${fault.name}-${Date.now()}.bin`
  const data = fileBytes(bytes, bytes & 0xffff)
  const start = proxy[dir]
  const reached = proxy.when(dir, start + share * bytes)
  const t = c.session.sendFile({ name, data })
  const done = settle(t.done)
  await withTimeout(Promise.race([reached, done]), 60_000, "the file crossing the link")
  const at = Math.min(1, (proxy[dir] - start) / bytes)
  await withTimeout(fault.inject(rig), 60_000, "the fault")
  const r = await withTimeout(done, 180_000, "the interrupted file transfer's outcome")
  const path = join(rig.agent.xferDir, name)
  if (r.ok) {
    rig.guestStream.judgeFile(t.id, data, "done")
    const written = await readFile(path).catch(() => undefined)
    if (written === undefined || !written.equals(Buffer.from(data))) {
      problems.push(`file→guest: reported done, the guest's file has ${written?.length ?? "no"} bytes of ${data.length}${written === undefined ? "" : " or differs"}`)
      return { outcome: "torn", at, problems }
    }
    return { outcome: "whole", at, problems }
  }
  // The agent is told (or loses its client) and removes the partial file: give it time, the SDK may have had to wait
  // for the agent to be seen again after a relay restart.
  const gone = await until(async () => !(await access(path).then(() => true, () => false)), "the partial file removed", 30_000).then(() => true, () => false)
  rig.guestStream.judgeFile(t.id, data, "failed")
  if (!gone) problems.push(`file→guest: failed (${r.error}) and a partial ${name} stayed in the guest`)
  return { outcome: "reported", at, problems }
}

const bigText = (bytes: number, tag: string): string => `${tag}|${"0123456789abcdef".repeat(Math.ceil(bytes / 16))}`.slice(0, bytes)

/**
 * After a failed round the rig is put back in order (a chardev reconnect: the agent starts afresh and is asked for its
 * caps), so that one failure does not make every later fault fail too; true when the chain works again.
 */
export const repair = async (rig: Rig): Promise<boolean> => {
  try {
    rig.agent.dropHost()
    await quiet(rig)
    await healthy(rig)
    await roundTrip(rig)
    return true
  } catch {
    return false
  }
}

/**
 * QEMU rate-limits VSERPORT_CHANGE to one per second per port and holds back the latest (spec §12): a port reopen is
 * reported up to a second late, and the relay resets the agent session when it hears it. Recovery is judged once the
 * bridge has seen no port event for longer than that window.
 */
const quiet = async (rig: Rig): Promise<void> => {
  let last = await rig.metric("vdrelay_bridge_qmp_events_total")
  let since = Date.now()
  await until(async () => {
    const now = await rig.metric("vdrelay_bridge_qmp_events_total")
    if (now !== last) [last, since] = [now, Date.now()]
    return Date.now() - since > 1500
  }, "the guest port's events to settle", 30_000)
}

/** A round that has not finished after this long is a failure in itself (something hung). */
const ROUND_TIMEOUT_MS = 240_000

export const runRound = async (rig: Rig, fault: Fault, share: number, bytes: number): Promise<RoundResult> => {
  const t0 = performance.now()
  const marks = { bridge: rig.bridge.log.lines.length, daemon: rig.agent.logs.daemon.mark(), session: rig.agent.logs.session.mark(), a: rig.a.reports.length, b: rig.b.reports.length }
  // The emulated chardev's counters (opens, held bytes handed to a new opener, hang-ups) over the round, for the post-mortem.
  const counters0 = { ...rig.agent.chardev.counters }
  const stage = { now: "start" }
  const r = await withTimeout(roundBody(rig, fault, share, bytes, stage), ROUND_TIMEOUT_MS, `round ${fault.name}`).catch(
    (err: unknown): RoundResult => ({ fault: fault.name, survived: false, outcome: "none", at: 0, problems: [`hung at "${stage.now}": ${err instanceof Error ? err.message : String(err)}`], ms: performance.now() - t0 }),
  )
  if (r.survived) return r
  const logs = [
    `--- chardev (during the round)\n${Object.entries(rig.agent.chardev.counters).map(([k, v]) => `${k} +${v - counters0[k as keyof typeof counters0]}`).join(", ")}`,
    `--- bridge\n${rig.bridge.log.lines.slice(marks.bridge).join("\n")}`,
    `--- console a\n${rig.a.reports.slice(marks.a).join("\n")}`,
    `--- console b\n${rig.b.reports.slice(marks.b).join("\n")}`,
    `--- daemon\n${rig.agent.logs.daemon.lines.slice(marks.daemon).join("\n")}`,
    `--- session agent\n${rig.agent.logs.session.lines.slice(marks.session).join("\n")}`,
  ].join("\n")
  return { ...r, logs }
}

const roundBody = async (rig: Rig, fault: Fault, share: number, bytes: number, stage: { now: string }): Promise<RoundResult> => {
  const t0 = performance.now()
  const marks = { session: rig.agent.logs.session.mark() }
  const problems: string[] = []
  const mark = rig.agent.logs.daemon.mark()
  const streamMark = rig.guestStream.mark()
  const streamMessages = rig.guestStream.messages
  let outcome: Outcome = "none"
  let at = 0
  try {
    stage.now = "healthy before"
    await quiet(rig)
    await healthy(rig)
    const c = controller(rig)
    const reports = c.reports.length
    const text = bigText(bytes, `${fault.name}-${Date.now()}`)
    stage.now = "transfer setup"
    if (fault.during === undefined) await withTimeout(fault.inject(rig), 60_000, "the fault")
    else if (fault.during === "file→guest") {
      stage.now = "file"
      const { proxy, dir } = gauge(rig, fault, c)
      const r = await fileRound(rig, fault, c, share, bytes, proxy, dir)
      ;({ outcome, at } = r)
      problems.push(...r.problems)
    } else {
      const { proxy, dir } = gauge(rig, fault, c)
      let transfer: Promise<Settled<string>>
      if (fault.during === "guest→console") {
        const grabbed = c.session.next("clipboard-grab")
        await withTimeout(rig.agent.setClipboard(text), 30_000, "xclip owning the guest clipboard")
        await withTimeout(grabbed, 30_000, "the guest's grab")
        const start = proxy[dir]
        const reached = proxy.when(dir, start + share * bytes)
        transfer = settle(c.session.requestClipboardText())
        await withTimeout(Promise.race([reached, transfer]), 60_000, "the message crossing the link")
        at = Math.min(1, (proxy[dir] - start) / bytes)
      } else {
        const logMark = rig.agent.logs.session.mark()
        await withTimeout(c.session.setClipboardText(text), 30_000, "the console's grab")
        await rig.agent.logs.session.waitFor(/received clipboard grab/, { from: logMark, timeoutMs: 30_000 })
        const start = proxy[dir]
        const reached = proxy.when(dir, start + share * bytes)
        transfer = pasteWithRetry(rig, () => proxy[dir] - start)
        await withTimeout(Promise.race([reached, transfer]), 60_000, "the message crossing the link")
        at = Math.min(1, (proxy[dir] - start) / bytes)
      }
      stage.now = "fault"
      await withTimeout(fault.inject(rig), 60_000, "the fault")
      stage.now = "transfer outcome"
      const r = await withTimeout(transfer, 120_000, "the interrupted transfer's outcome")
      // The guest app's paste can fail before the relay's notice reaches the console: give the notice time to arrive.
      // (A clipboard request that failed is itself the report to the console that asked.)
      if (fault.during === "console→guest" && !(r.ok && r.value === text)) await until(() => c.reports.length > reports, "a report", 15_000).catch(() => {})
      const told = c.reports.length > reports
      const reachedAgent = new RegExp(`received clipboard data, arg1: \\d+, arg2: \\d+, size ${bytes}$`)
      if (r.ok && r.value === text) outcome = "whole"
      else if (fault.during === "console→guest" && rig.agent.logs.session.lines.slice(marks.session).some((l) => reachedAgent.test(l))) outcome = "delivered"
      else if (r.ok && r.value.length > 0) outcome = "torn"
      else outcome = told || (fault.during === "guest→console" && !r.ok) ? "reported" : "silent"
      if (outcome === "torn") problems.push(`${fault.during}: ${r.ok ? r.value.length : 0} chars arrived of ${text.length}`)
      if (outcome === "silent") problems.push(`${fault.during}: lost and the console was not told (${r.ok ? "empty paste" : r.error})`)
    }
    stage.now = "quiet"
    await quiet(rig)
    stage.now = "healthy after"
    await healthy(rig)
    // A takeover moved control: give it back so that the next round starts from the same seats.
    if (rig.a.session.role !== "controller") {
      stage.now = "control back to A"
      await withTimeout(rig.a.session.takeControl(), 30_000, "console A taking control back")
      await until(() => rig.a.session.role === "controller", "console A back in control", 30_000)
      await healthy(rig)
    }
    stage.now = "round trip"
    await roundTrip(rig)
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err))
  }
  const sync = syncErrors(rig, mark)
  problems.push(...sync.map((l) => `agent log: ${l}`))
  // The whole-stream oracle: nothing doubled, reordered or stale reached the guest during the round.
  problems.push(...rig.guestStream.since(streamMark).map((p) => `guest stream: ${p}`))
  if (rig.guestStream.messages === streamMessages) problems.push("guest stream: no whole message observed during the round (the chardev tap is missing)")
  const survived = problems.length === 0 && outcome !== "torn" && outcome !== "silent"
  return { fault: fault.name, survived, outcome, at, problems, ms: performance.now() - t0 }
}
