// Live migration with the real agent in a real guest (docs/migration.md): two hosts (a socket directory and a bridge
// process each), one workerd, one SDK console. With a big guest clipboard crossing to the console, a big console
// clipboard crossing to the guest, a file streaming into the guest and a mouse stream, QEMU migrates the VM to the other
// host. Judged on the whole: the guest's clipboard reaches the console whole and identical, the console's reaches the
// guest whole and identical, the file lands byte-exact (sha-256) exactly once, the console's WebSocket never closed and
// it never saw the agent go, the relay kept its agent connection (no new epoch: no caps request after the switch), the
// daemon logged no sync error, and a clipboard round trip works afterwards on the destination.
import { createHash, randomBytes } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type MigrationBed, startMigrationBed, until } from "./migration-bed.ts"
import { vmTestsEnabled } from "./index.ts"

/**
 * Sizes: under TCG on a loaded 2-core machine the guest's agent moves ~0.3–1 MiB/s each way, and the test must stay
 * ≲ 3 min with two boots; 2 MiB each way keeps every transfer in flight across a migration of 256 MiB of guest RAM
 * (a few seconds of precopy) without dominating the run. `npm run chaos:migrate` takes sizes as flags.
 */
export const CLIPBOARD_BYTES = 2 * 1024 * 1024
export const FILE_BYTES = 2 * 1024 * 1024

/** VD_AGENT_CLIPBOARD_SELECTION_PRIMARY (spice/vd_agent.h). */
const PRIMARY = 1

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

describe.skipIf(!vmTestsEnabled())("live migration: the console never notices", () => {
  let bed: MigrationBed

  beforeAll(async () => {
    bed = await startMigrationBed()
  }, 600_000)

  afterAll(async () => {
    if (process.env.VDRELAY_MIGRATION_STORY === "1") for (const l of bed?.story() ?? []) console.log(`[migrate] ${l}`)
    await bed?.stop()
  })

  it("one migration with transfers in flight both ways: whole, exactly once, the console's link never closed", async () => {
    const s = bed.session
    const src = bed.vm
    const mark = await src.guest.daemonLogMark()
    // Guest → console on PRIMARY, console → guest on CLIPBOARD (one selection cannot carry both: the console's grab
    // would take the guest's copy away). The guest copies; the console fetches it while the VM migrates.
    const toConsole = bigText(CLIPBOARD_BYTES, `g2c ${randomBytes(4).toString("hex")}`)
    let grabs = 0
    const off = s.on("clipboard-grab", (g) => void (g.selection === PRIMARY && grabs++))
    await src.guest.setClipboard(toConsole, { selection: "primary" })
    await until(() => grabs > 0, "the console seeing the guest's grab", 60_000)
    off()
    // Console → guest: the console grabs; an X client in the guest pastes into a file (the control port's reply to a
    // request in flight would be lost with the source QEMU, so the paste runs detached and is read after).
    const toGuest = bigText(CLIPBOARD_BYTES, `c2g ${randomBytes(4).toString("hex")}`)
    await s.setClipboardText(toGuest)
    await until(async () => /text\/plain;charset=utf-8/.test((await src.guest.exec("export DISPLAY=:0; timeout 5 xclip -o -selection clipboard -t TARGETS")).stdout.toString()), "the guest's agent owning the console's grab", 60_000)
    const capsBefore = s.agent.caps
    await src.guest.sh("(export DISPLAY=:0; xclip -o -selection clipboard > /tmp/pasted.tmp 2>/tmp/paste.err; mv /tmp/pasted.tmp /tmp/pasted) >/dev/null 2>&1 &")
    const fromGuest = s.requestClipboardText(PRIMARY)
    const data = fileBytes(FILE_BYTES, 13)
    const file = s.sendFile({ name: "migrated.bin", data })
    let mice = 0
    const mouse = setInterval(() => {
      if (s.agent.connected) s.sendMouse({ x: (mice * 7) % 1024, y: (mice * 3) % 768 })
      mice++
    }, 20)
    let rec
    try {
      rec = await bed.migrate("complete")
    } finally {
      clearInterval(mouse)
    }
    console.log(`[migrate] ${JSON.stringify(rec)}; mouse events sent: ${mice}`)
    expect(rec.status).toBe("completed")
    const dst = bed.vm
    expect(dst).not.toBe(src)
    // Guest → console, whole and identical.
    const got = await fromGuest
    expect(got.length).toBe(toConsole.length)
    expect(got === toConsole).toBe(true)
    // The file, byte-exact, once.
    await file.done
    const files = await dst.guest.files()
    expect(files.filter((f) => f.name.startsWith("migrated")).map((f) => [f.name, f.size, f.sha256])).toEqual([["migrated.bin", data.length, sha256(data)]])
    // Console → guest, whole and identical.
    await until(async () => (await dst.guest.exec("test -f /tmp/pasted")).code === 0, "the guest's paste finishing", 120_000)
    const pasted = (await dst.guest.exec("cat /tmp/pasted")).stdout.toString("utf8")
    expect(pasted.length).toBe(toGuest.length)
    expect(pasted === toGuest).toBe(true)
    // The console never noticed: same WebSocket, agent never gone, same caps.
    expect(bed.seen.closes).toBe(0)
    expect(bed.seen.states).toEqual([])
    expect(bed.seen.agentDown).toEqual([])
    expect(s.agent.caps).toEqual(capsBefore)
    // The guest never lost its host: no "lost spice client connection" (the session agent would drop its clipboard
    // and transfers, spec §14), and the relay kept its epoch (no new agent connection on the destination's bridge).
    const daemon = (await dst.guest.agentLogs()).daemon.split("\n").slice(mark)
    expect(daemon.filter((l) => /lost spice client|client disconnected/i.test(l))).toEqual([])
    expect(await dst.guest.syncErrors(mark)).toEqual([])
    const [a, b] = bed.hosts
    expect(a.bridge.events().filter((e) => e.event === "migration-handover").length).toBe(1)
    expect(b.bridge.events().filter((e) => e.event === "migration-continued").length).toBe(1)
    expect([...a.bridge.events(), ...b.bridge.events()].filter((e) => e.event === "migration-backlog" || e.event === "migration-late-bytes")).toEqual([])
    // And the clipboard works both ways on the destination.
    const again = `after ${randomBytes(6).toString("hex")} ✓`
    let g2 = 0
    const off2 = s.on("clipboard-grab", () => void g2++)
    await dst.guest.setClipboard(again)
    await until(() => g2 > 0, "the console seeing the guest's grab after the migration", 60_000)
    off2()
    expect(await s.requestClipboardText()).toBe(again)
    const back = `back ${randomBytes(6).toString("hex")} ✓`
    await s.setClipboardText(back)
    await until(async () => (await dst.guest.getClipboard({ timeoutMs: 20_000 }).catch(() => Buffer.from(""))).toString("utf8") === back, "the guest pasting the console's clipboard after the migration", 90_000)
  }, 900_000)
})
