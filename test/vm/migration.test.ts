// Live migration with the real agent in a real guest (docs/migration.md): two hosts (a socket directory and a bridge
// process each), one workerd, one SDK console. With a big guest clipboard crossing to the console, a big console
// clipboard crossing to the guest, a file streaming into the guest and a mouse stream, QEMU migrates the VM to the other
// host once the guest's clipboard has started crossing (test/vm/migration-round.ts judges it). Expected: nothing lost,
// torn or duplicated, the guest's clipboard carried partly by each host's bridge and whole at the console, the console's
// WebSocket never closed and it never saw the agent go, the guest never lost its host, and a clipboard round trip
// works afterwards on the destination. Then two migrations that land inside messages on purpose
// (test/vm/migration-crossing.ts): the guest's daemon frozen half way through writing its clipboard (continued whole
// across both hosts), and frozen while a file streams in (bytes left in the source socket at STOP: detected, a reported
// reset, never torn).
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type MigrationBed, startMigrationBed } from "./migration-bed.ts"
import { crossingRound } from "./migration-crossing.ts"
import { migrationRound } from "./migration-round.ts"
import { vmTestsEnabled } from "./index.ts"

/**
 * Sizes: as the issue asks, a 10 MiB clipboard each way and a file. Under TCG on the 2-core machine the round took
 * 25 s and the file 63 s with both QEMU boots (load 6–10, docs/migration.md §4). `npm run chaos:migrate -- --max-bytes
 * N` runs other sizes.
 */
const SIZES = { toConsole: 10 * 1024 * 1024, toGuest: 10 * 1024 * 1024, file: 2 * 1024 * 1024 }

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
    // The guest's paste of the console's 10 MiB starts once the migration runs: in flight across the switch, written
    // whole on the destination (one begun before MIGRATION active outlasts the precopy under TCG: migration-round.ts).
    const r = await migrationRound(bed, 1, "complete", SIZES, { pasteOnceMigrating: true })
    console.log(`[migrate] ${JSON.stringify({ migration: r.migration, split: r.split, agentGapMs: r.agentGapMs, ms: r.ms })}`)
    for (const n of r.notes) console.log(`[migrate]   ${n}`)
    expect(r.migration.status).toBe("completed")
    expect(r.migration.on).toBe("host-b")
    expect({ lost: r.lost, torn: r.torn, duplicated: r.duplicated, roundTrip: r.roundTrip }).toEqual({ lost: [], torn: [], duplicated: [], roundTrip: [] })
    // Every byte of the guest's clipboard was read by one host's bridge or the other (whether the guest was still
    // writing it at STOP depends on the machine's speed: logged, counted by chaos:migrate; the unit and workerd tests
    // continue a message across the switch deterministically).
    expect(r.split.source + r.split.destination).toBeGreaterThanOrEqual(SIZES.toConsole)
    console.log(`[migrate] the guest's clipboard ${r.split.destination > 0 ? "crossed the switch" : "was read whole by the source"}: ${JSON.stringify(r.split)}`)
    // The console never noticed; the guest never lost its host; the relay kept its agent connection (same caps).
    expect(r.reconnects).toBe(0)
    expect(r.agentGapMs).toBe(0)
    expect(r.notes.filter((n) => n.startsWith("daemon:") || n.startsWith("agent caps changed") || n.startsWith("migrated before"))).toEqual([])
    const [a, b] = bed.hosts
    expect(a.bridge.events().filter((e) => e.event === "migration-handover").length).toBe(1)
    expect(b.bridge.events().filter((e) => e.event === "migration-continued").length).toBe(1)
    expect([...a.bridge.events(), ...b.bridge.events()].filter((e) => e.event === "migration-backlog" || e.event === "migration-late-bytes")).toEqual([])
  }, 900_000)

  it("the switch lands inside a guest message (the guest's daemon frozen mid-write): whole once, across both hosts", async () => {
    // The VM now runs on host-b: this migration goes back to host-a.
    const r = await crossingRound(bed, 2, "guest-writing", 4 * 1024 * 1024)
    console.log(`[migrate] crossing ${JSON.stringify(r)}`)
    expect(r.migration.status).toBe("completed")
    expect(r.split.source).toBeGreaterThan(0)
    expect(r.split.destination).toBeGreaterThan(0)
    expect(r.split.source + r.split.destination).toBeGreaterThanOrEqual(4 * 1024 * 1024)
    expect({ toConsole: r.toConsole, toGuest: r.toGuest, syncErrors: r.syncErrors }).toEqual({ toConsole: "whole", toGuest: "whole", syncErrors: [] })
    expect(r.handover).toMatchObject({ torn: false, untaken: 0 })
    expect(r.reconnects).toBe(0)
    expect(r.agentGapMs).toBe(0)
  }, 900_000)

  it("guest-bound bytes QEMU never took (the agent frozen through the precopy): detected at STOP, a reported reset, never torn", async () => {
    // The VM runs on host-a again: back to host-b. A file streams in while the daemon is frozen, so the source socket
    // still holds some of it at STOP (spec §13: they never reach the guest).
    const r = await crossingRound(bed, 3, "agent-blocked", 4 * 1024 * 1024)
    console.log(`[migrate] blocked ${JSON.stringify(r)}`)
    expect(r.migration.status).toBe("completed")
    expect(r.stop?.unread).toBeGreaterThan(0)
    expect(r.handover).toMatchObject({ torn: true })
    // The file is reported failed and leaves nothing in the guest; the daemon never lost sync; the console kept its
    // link (the agent was reported gone for the reset) and the clipboard works both ways afterwards.
    expect(r.file).toMatch(/^reported: /)
    expect(r.file).not.toMatch(/partial/)
    expect({ syncErrors: r.syncErrors, roundTrip: r.roundTrip, reconnects: r.reconnects }).toEqual({ syncErrors: [], roundTrip: [], reconnects: 0 })
  }, 900_000)
})
