// One live migration with transfers in flight both ways, judged on the whole (docs/migration.md): a guest PRIMARY
// selection fetched by the console, a console CLIPBOARD pasted in the guest, a file into the guest, a mouse stream —
// all started before QMP `migrate` and finishing after it. Shared by test/vm/migration.test.ts (one round) and
// scripts/chaos-migrate.ts (many seeded rounds and the failure variants).
//   lost        a transfer that neither arrived nor was reported failed
//   torn        content that differs (a clipboard of another length or bytes, a file of another hash), or a sync
//               error in the guest daemon's log
//   duplicated  a file twice in the guest, or a clipboard longer than what was copied
//   reconnects  the console's WebSocket closed or its state changed
//   agentGap    ms the console saw the agent unavailable (agent connected:false → true), 0 when it never did
import { createHash, randomBytes } from "node:crypto"
import type { ClientError } from "../../src/client/index.ts"
import { type MigrationBed, type MigrationRecord, type Variant, until } from "./migration-bed.ts"

/** VD_AGENT_CLIPBOARD_SELECTION_PRIMARY (spice/vd_agent.h). */
const PRIMARY = 1

export interface RoundSizes {
  readonly toConsole: number
  readonly toGuest: number
  readonly file: number
}

export interface RoundResult {
  readonly n: number
  readonly variant: Variant
  readonly sizes: RoundSizes
  readonly migration: MigrationRecord
  readonly lost: string[]
  readonly torn: string[]
  readonly duplicated: string[]
  readonly reconnects: number
  readonly agentGapMs: number
  /** What went wrong with the clipboard round trip after the migration ([] when both ways worked). */
  readonly roundTrip: string[]
  /** Guest→console bytes the source's and the destination's bridges read during the round (the switch's split). */
  readonly split: { readonly source: number; readonly destination: number }
  readonly notes: string[]
  readonly ms: number
}

const READ = "vdrelay_bridge_agent_bytes_read_total"

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex")

/** Position-dependent bytes: a doubled or swapped block changes the hash. */
export const fileBytes = (size: number, salt: number): Uint8Array => {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (Math.imul(i + salt, 2654435761) >>> 24) ^ (i >>> 16)
  return out
}

/** Text whose every 64-byte line names its position: a torn, shifted or doubled copy does not compare equal. */
export const bigText = (bytes: number, tag: string): string => {
  const lines: string[] = []
  for (let i = 0; lines.length * 64 < bytes; i++) lines.push(`${tag} ${String(i).padStart(8, "0")} `.padEnd(63, "."))
  return lines.join("\n")
}

const within = (pred: () => boolean | Promise<boolean>, ms: number): Promise<boolean> => until(pred, "", ms).then(() => true, () => false)

/** Clipboard console → guest and guest → console on the VM where it runs now; what went wrong. */
export const clipboardRoundTrip = async (bed: MigrationBed, tag: string): Promise<string[]> => {
  const s = bed.session
  const vm = bed.vm
  const wrong: string[] = []
  await bed.ready()
  const again = `g2c ${tag} ${randomBytes(6).toString("hex")} ✓`
  let grabs = 0
  const off = s.on("clipboard-grab", (g) => void (g.selection === 0 && grabs++))
  try {
    await vm.guest.setClipboard(again)
    if (!(await within(() => grabs > 0, 60_000))) wrong.push("the console never saw the guest's grab")
    else {
      const got = await s.requestClipboardText().catch((e: ClientError) => `(failed: ${e.reason})`)
      if (got !== again) wrong.push(`guest→console got ${JSON.stringify(got.slice(0, 60))}`)
    }
  } finally {
    off()
  }
  const back = `c2g ${tag} ${randomBytes(6).toString("hex")} ✓`
  await s.setClipboardText(back)
  const ok = await within(async () => (await vm.guest.getClipboard({ timeoutMs: 20_000 }).catch(() => Buffer.from(""))).toString("utf8") === back, 90_000)
  if (!ok) wrong.push("console→guest: the guest never pasted the console's text")
  return wrong
}

/**
 * `pasteOnceMigrating`: the guest's paste (which makes the console send its clipboard) starts ~1 s after QMP `migrate`
 * instead of before it, so the console's clipboard is in flight at the switch but not begun on the source. Under TCG a
 * 10 MiB paste begun before `MIGRATION active` outlasts the precopy; still unfinished at STOP, the handover is torn
 * and the relay starts a new agent connection (docs/migration.md §2): reported, never torn, but not what this round
 * measures.
 */
export const migrationRound = async (bed: MigrationBed, n: number, variant: Variant, sizes: RoundSizes, opts: { readonly pasteOnceMigrating?: boolean } = {}): Promise<RoundResult> => {
  const t0 = Date.now()
  const s = bed.session
  const src = bed.vm
  const lost: string[] = []
  const torn: string[] = []
  const duplicated: string[] = []
  const notes: string[] = []
  await bed.ready()
  await src.guest.clearFiles()
  await src.guest.sh("rm -f /tmp/pasted /tmp/pasted.tmp")
  const mark = await src.guest.daemonLogMark()
  const closes0 = bed.seen.closes
  const states0 = bed.seen.states.length
  const down0 = bed.seen.agentDown.length
  const tag = `r${n} ${randomBytes(4).toString("hex")}`
  // Guest → console on PRIMARY, console → guest on CLIPBOARD (one selection cannot carry both ways at once).
  const toConsole = bigText(sizes.toConsole, `g2c ${tag}`)
  let grabs = 0
  const off = s.on("clipboard-grab", (g) => void (g.selection === PRIMARY && grabs++))
  await src.guest.setClipboard(toConsole, { selection: "primary" })
  await until(() => grabs > 0, "the console seeing the guest's PRIMARY grab", 60_000)
  off()
  const toGuest = bigText(sizes.toGuest, `c2g ${tag}`)
  await s.setClipboardText(toGuest)
  await until(async () => /text\/plain;charset=utf-8/.test((await src.guest.exec("export DISPLAY=:0; timeout 5 xclip -o -selection clipboard -t TARGETS")).stdout.toString()), "the guest's agent owning the console's grab", 60_000)
  const caps0 = JSON.stringify(s.agent.caps)
  const here = bed.active
  const there = bed.hosts[0] === here ? bed.hosts[1] : bed.hosts[0]
  const read0 = { source: await here.bridge.metric(READ, "vm-migrate"), destination: await there.bridge.metric(READ, "vm-migrate") }
  // The paste runs detached in the guest: a control request in flight would lose its reply with the source QEMU.
  const paste = (delayUs: number): Promise<unknown> =>
    src.guest.sh(`(usleep ${delayUs}; export DISPLAY=:0; timeout 300 xclip -o -selection clipboard > /tmp/pasted.tmp 2>/tmp/paste.err; mv /tmp/pasted.tmp /tmp/pasted) >/dev/null 2>&1 &`)
  if (opts.pasteOnceMigrating !== true) await paste(0)
  const fromGuest = s.requestClipboardText(PRIMARY).then((t) => t, (e: ClientError) => new Error(e.reason))
  const data = fileBytes(sizes.file, n)
  const name = `migrated-${n}.bin`
  const file = s.sendFile({ name, data })
  const fileDone = file.done.then(() => "done", (e: ClientError) => `failed: ${e.reason}`)
  let mice = 0
  const mouse = setInterval(() => {
    if (s.agent.connected) s.sendMouse({ x: (mice * 7) % 1024, y: (mice * 3) % 768 })
    mice++
  }, 20)
  let migration: MigrationRecord
  try {
    // Migrate once the guest's clipboard is crossing (a share of it read by the source's bridge).
    const started = Math.min(256 * 1024, Math.floor(sizes.toConsole / 4))
    const armed = async (): Promise<void> => {
      await until(async () => (await here.bridge.metric(READ, "vm-migrate")) - read0.source >= started, "the guest's clipboard crossing", 120_000).catch(() => void notes.push("migrated before the guest's clipboard started crossing"))
      if (opts.pasteOnceMigrating === true) await paste(1_000_000)
    }
    migration = await bed.migrate(variant, armed)
  } finally {
    clearInterval(mouse)
  }
  const dst = bed.vm
  notes.push(`migration ${JSON.stringify(migration)}; mouse events ${mice}`)
  // Guest → console.
  const got = await Promise.race([fromGuest, new Promise<Error>((r) => setTimeout(() => r(new Error("never settled (180 s)")), 180_000))])
  if (got instanceof Error) (got.message.startsWith("never") ? lost : notes).push(`guest→console clipboard: ${got.message}`)
  else if (got !== toConsole) (got.length > toConsole.length ? duplicated : torn).push(`guest→console clipboard: ${got.length} B, not the ${toConsole.length} B copied`)
  // A restarted destination bridge starts its counters at 0.
  const split = { source: (await here.bridge.metric(READ, "vm-migrate")) - read0.source, destination: Math.max(0, (await there.bridge.metric(READ, "vm-migrate")) - read0.destination) }
  // The file.
  const fileOutcome = await Promise.race([fileDone, new Promise<string>((r) => setTimeout(() => r("never settled (300 s)"), 300_000))])
  const files = (await dst.guest.files()).filter((f) => f.name.startsWith(`migrated-${n}`))
  if (fileOutcome === "done") {
    if (files.length > 1) duplicated.push(`file: ${JSON.stringify(files.map((f) => f.name))}`)
    else if (files.length === 0) lost.push("file reported done, not in the guest")
    else if (files[0]!.size !== data.length || files[0]!.sha256 !== sha256(data)) torn.push(`file: ${files[0]!.size} B, sha ${files[0]!.sha256.slice(0, 12)}`)
  } else if (fileOutcome.startsWith("never")) lost.push(`file: ${fileOutcome}`)
  else {
    notes.push(`file ${fileOutcome}`)
    if (!(await within(async () => !(await dst.guest.files()).some((f) => f.name.startsWith(`migrated-${n}`)), 60_000))) torn.push(`file ${fileOutcome}, a partial file stays in the guest`)
  }
  // Console → guest.
  if (!(await within(async () => (await dst.guest.exec("test -f /tmp/pasted")).code === 0, 240_000))) lost.push("console→guest clipboard: the guest's paste never finished")
  else {
    const pasted = (await dst.guest.exec("cat /tmp/pasted")).stdout.toString("utf8")
    if (pasted !== toGuest) (pasted.length > toGuest.length ? duplicated : pasted.length === 0 ? lost : torn).push(`console→guest clipboard: ${pasted.length} B, not the ${toGuest.length} B`)
  }
  // The guest's logs live in its RAM: they migrated with it, so the mark holds on the destination too.
  const sync = await dst.guest.syncErrors(mark)
  torn.push(...sync.map((l) => `agent log: ${l.trim()}`))
  const daemon = (await dst.guest.agentLogs()).daemon.split("\n").slice(mark)
  notes.push(...daemon.filter((l) => /lost spice client|client disconnected/i.test(l)).map((l) => `daemon: ${l.trim()}`))
  if (JSON.stringify(s.agent.caps) !== caps0) notes.push(`agent caps changed: ${caps0} → ${JSON.stringify(s.agent.caps)}`)
  const downs = bed.seen.agentDown.slice(down0)
  const ups = bed.seen.agentUp.filter((t) => t >= (downs[0] ?? Infinity))
  const agentGapMs = downs.reduce((sum, d, i) => sum + ((ups[i] ?? Date.now()) - d), 0)
  const roundTrip = await clipboardRoundTrip(bed, tag)
  return {
    n,
    variant,
    sizes,
    migration,
    lost,
    torn,
    duplicated,
    reconnects: bed.seen.closes - closes0 + (bed.seen.states.length - states0 > 0 ? 1 : 0),
    agentGapMs,
    roundTrip,
    split,
    notes,
    ms: Date.now() - t0,
  }
}
