// A live migration that lands in the middle of messages, on purpose (docs/migration.md §4): the guest's daemon
// (spice-vdagentd) is frozen (SIGSTOP) while it writes a big PRIMARY clipboard to the console, so the switch finds the
// guest half way through that one write; QEMU migrates; the daemon is thawed (SIGCONT) on the destination and writes the
// rest there. Meanwhile a console→guest message crosses the other way: the console's clipboard grab, handed to the
// source while the daemon is frozen (QEMU keeps it in the guest's buffers, which migrate), is read by the daemon only on
// the destination, and the guest then pastes the console's text from there.
//
// "agent-blocked" is the edge of docs/migration.md §2: the daemon is frozen while a file streams to the guest, so the
// source's socket still holds guest-bound bytes at STOP that QEMU never takes. The source bridge must see them (asked at
// STOP) and say the handover is torn: the relay then starts a new agent connection (reported), never a torn stream.
import { randomBytes } from "node:crypto"
import type { ClientError } from "../../src/client/index.ts"
import { type MigrationBed, type MigrationRecord, until } from "./migration-bed.ts"
import { bigText, clipboardRoundTrip, fileBytes } from "./migration-round.ts"

const PRIMARY = 1
const READ = "vdrelay_bridge_agent_bytes_read_total"
const WRITTEN = "vdrelay_bridge_guest_bytes_written_total"
const DAEMON = "$(cat /run/vdagentd.pid)"
/** guest-writing: the daemon is frozen after writing this much of the guest's clipboard. */
const FREEZE_AT = 1024 * 1024

export type CrossingMode = "guest-writing" | "agent-blocked"

export interface CrossingResult {
  readonly mode: CrossingMode
  readonly migration: MigrationRecord
  /** Guest→console bytes each host's bridge read: both > 0 when the guest's clipboard crossed the switch. */
  readonly split: { readonly source: number; readonly destination: number }
  /** What the console got of the guest's clipboard: "whole", or what was wrong. */
  readonly toConsole: string
  /**
   * guest-writing: "whole" when the guest pasted the console's text on the destination, or what was wrong.
   * agent-blocked: "reset" (the console's grab went with the agent connection).
   */
  readonly toGuest: string
  /** agent-blocked: how the file ended ("whole", "reported: <reason>", or what was wrong). */
  readonly file: string
  /** Source bridge's handover and STOP log lines (torn, untaken, unread). */
  readonly handover: Record<string, unknown> | undefined
  readonly stop: Record<string, unknown> | undefined
  readonly syncErrors: string[]
  /** agent-blocked: the clipboard both ways after the reset ([] when it worked). */
  readonly roundTrip: string[]
  readonly reconnects: number
  readonly agentGapMs: number
  readonly ms: number
}

const within = (pred: () => boolean | Promise<boolean>, ms: number): Promise<boolean> => until(pred, "", ms).then(() => true, () => false)

export const crossingRound = async (bed: MigrationBed, n: number, mode: CrossingMode, bytes: number): Promise<CrossingResult> => {
  const t0 = Date.now()
  const s = bed.session
  const src = bed.vm
  await bed.ready()
  await src.guest.clearFiles()
  const mark = await src.guest.daemonLogMark()
  const closes0 = bed.seen.closes
  const down0 = bed.seen.agentDown.length
  const tag = `x${n} ${randomBytes(4).toString("hex")}`
  const here = bed.active
  const there = bed.hosts[0] === here ? bed.hosts[1] : bed.hosts[0]
  const handovers0 = here.bridge.events().filter((e) => e.event === "migration-handover").length
  const stops0 = here.bridge.events().filter((e) => e.event === "migration-stop").length

  const toConsole = bigText(bytes, `g2c ${tag}`)
  let grabs = 0
  const off = s.on("clipboard-grab", (g) => void (g.selection === PRIMARY && grabs++))
  await src.guest.setClipboard(toConsole, { selection: "primary" })
  await until(() => grabs > 0, "the console seeing the guest's PRIMARY grab", 60_000)
  off()
  const read0 = { source: await here.bridge.metric(READ, "vm-migrate"), destination: await there.bridge.metric(READ, "vm-migrate") }
  const written0 = await here.bridge.metric(WRITTEN, "vm-migrate")
  const toGuest = `c2g ${tag} ${"✓".repeat(64)}`
  let fromGuest: Promise<string | Error> = Promise.resolve(new Error("not asked"))
  let fileDone: Promise<string> = Promise.resolve("not sent")
  const data = fileBytes(bytes, n)
  const migration = await bed.migrate("complete", async () => {
    if (mode === "guest-writing") {
      // Inside the guest, freeze the daemon once it has written FREEZE_AT bytes more (its /proc io counter: the
      // clipboard dominates): the guest writes MiB/s, faster than a freeze sent from here lands. The watch uses shell
      // builtins only: a `sed` per sample (a fork and exec, slow under TCG) and a 2 ms sleep let a quiet machine's
      // daemon write all 4 MiB between two samples (a fresh-clone CI run found the whole message on the source).
      await src.guest.sh(
        `P=${DAEMON}; w0=$(sed -n 's/^wchar: //p' /proc/$P/io); rm -f /tmp/frozen; ` +
          `(while :; do w=$w0; while read k v; do [ "$k" = "wchar:" ] && w=$v; done < /proc/$P/io; ` +
          `[ $((w - w0)) -ge ${FREEZE_AT} ] && break; done; kill -STOP $P; touch /tmp/frozen) >/dev/null 2>&1 &`,
      )
      fromGuest = s.requestClipboardText(PRIMARY).then((t) => t, (e: ClientError) => new Error(e.reason))
      await until(async () => (await src.guest.exec("test -f /tmp/frozen")).code === 0, "the guest's daemon frozen mid-write", 120_000)
    } else {
      const file = s.sendFile({ name: `blocked-${n}.bin`, data })
      fileDone = file.done.then(() => "whole", (e: ClientError) => `reported: ${e.reason}`)
      await until(async () => (await here.bridge.metric(WRITTEN, "vm-migrate")) - written0 >= 256 * 1024, "the file streaming into the guest", 120_000)
      await src.guest.sh(`kill -STOP ${DAEMON}`)
    }
    // A console→guest message handed to the source while the daemon is frozen: taken by QEMU, read after the switch.
    // (Not awaited: with the file filling the socket, its write completes only on the destination.)
    void s.setClipboardText(toGuest).catch(() => {})
    // The guest's queue drains into the source's bridge before the migration starts.
    await new Promise((r) => setTimeout(r, 1_000))
  })
  const dst = bed.vm
  await dst.guest.sh(`kill -CONT ${DAEMON}`)

  let gotConsole = "not asked"
  if (mode === "guest-writing") {
    const got = await Promise.race([fromGuest, new Promise<Error>((r) => setTimeout(() => r(new Error("never settled (180 s)")), 180_000))])
    gotConsole = got instanceof Error ? got.message : got === toConsole ? "whole" : `${got.length} B, not the ${toConsole.length} B copied`
  }
  const split = { source: (await here.bridge.metric(READ, "vm-migrate")) - read0.source, destination: Math.max(0, (await there.bridge.metric(READ, "vm-migrate")) - read0.destination) }
  let file = "not sent"
  if (mode === "agent-blocked") {
    file = await Promise.race([fileDone, new Promise<string>((r) => setTimeout(() => r("never settled (300 s)"), 300_000))])
    const files = (await dst.guest.files()).filter((f) => f.name.startsWith(`blocked-${n}`))
    if (file === "whole" && (files.length !== 1 || files[0]!.size !== data.length)) file = `reported whole, in the guest: ${JSON.stringify(files)}`
    if (file.startsWith("reported:") && !(await within(async () => !(await dst.guest.files()).some((f) => f.name.startsWith(`blocked-${n}`)), 60_000))) file += ", a partial file stays in the guest"
  }
  // console→guest: the guest's agent owns the console's grab, and the paste gives the console's text (asked from the
  // destination; after a reset the SDK offers its clipboard again).
  let toGuestOutcome = "reset"
  if (mode === "guest-writing") {
    const pasted = await within(async () => (await dst.guest.getClipboard({ timeoutMs: 20_000 }).catch(() => Buffer.from(""))).toString("utf8") === toGuest, 120_000)
    toGuestOutcome = pasted ? "whole" : "the guest never pasted the console's text"
  }
  const downs = bed.seen.agentDown.slice(down0)
  const ups = bed.seen.agentUp.filter((t) => t >= (downs[0] ?? Infinity))
  return {
    mode,
    migration,
    split,
    toConsole: gotConsole,
    toGuest: toGuestOutcome,
    file,
    handover: here.bridge.events().filter((e) => e.event === "migration-handover")[handovers0],
    stop: here.bridge.events().filter((e) => e.event === "migration-stop")[stops0],
    syncErrors: (await dst.guest.syncErrors(mark)).map((l) => l.trim()),
    roundTrip: mode === "agent-blocked" ? await clipboardRoundTrip(bed, tag) : [],
    reconnects: bed.seen.closes - closes0,
    agentGapMs: downs.reduce((sum, d, i) => sum + ((ups[i] ?? Date.now()) - d), 0),
    ms: Date.now() - t0,
  }
}
