// Reading what `virsh event --loop` and `virsh qemu-monitor-event --loop` print, from lines captured from libvirt 9.0
// (libvirt-fixtures/README.md), and the port watcher that turns VSERPORT_CHANGE and XML reads into the core's level.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { parseDomainEventLine, parseMonitorEventLine, rereads, serialChange, stopped } from "../../../src/bridge/libvirt-events.ts"
import { LibvirtPortWatch, type PortSink, SETTLE_MS } from "../../../src/bridge/libvirt-port.ts"
import type { PortLevel } from "../../../src/link/types.ts"

const lines = (name: string): string[] => readFileSync(join(import.meta.dirname, "libvirt-fixtures", name), "utf8").split("\n").filter((l) => l !== "")

describe("virsh event lines", () => {
  it("every captured line parses; stops, starts and metadata changes are told apart", () => {
    const events = lines("virsh-event.txt").map(parseDomainEventLine)
    expect(events.every((e) => e?.domain === "lv-test")).toBe(true)
    expect(events.map((e) => `${e!.event}|${e!.detail}`)).toEqual([
      "lifecycle|Shutdown Finished after host request",
      "lifecycle|Stopped Destroyed",
      "lifecycle|Resumed Unpaused",
      "lifecycle|Started Booted",
      "lifecycle|Suspended Paused",
      "lifecycle|Resumed Unpaused",
      "reboot|",
      "reboot|",
      "reboot|",
      "reboot|",
      "lifecycle|Shutdown Finished after host request",
      "lifecycle|Stopped Destroyed",
      "metadata-change|type element, uri urn:vdrelay:libvirt:1",
      "lifecycle|Undefined Removed",
      "lifecycle|Defined Added",
    ])
    expect(events.filter((e) => stopped(e!)).map((e) => e!.detail)).toEqual(["Shutdown Finished after host request", "Stopped Destroyed", "Shutdown Finished after host request", "Stopped Destroyed"])
    expect(events.filter((e) => rereads(e!)).length).toBe(11) // every lifecycle and the metadata change; not reboots
  })

  it("a migration's events are stops and starts; other lines are not events", () => {
    expect(stopped(parseDomainEventLine("event 'lifecycle' for domain 'web 1': Stopped Migrated")!)).toBe(true)
    expect(parseDomainEventLine("event 'lifecycle' for domain 'web 1': Started Migrated")).toMatchObject({ domain: "web 1", detail: "Started Migrated" })
    expect(parseDomainEventLine("events received: 3")).toBeUndefined()
    expect(parseDomainEventLine("")).toBeUndefined()
  })
})

describe("virsh qemu-monitor-event lines", () => {
  it("every captured line parses with QEMU's timestamp and the device alias", () => {
    const events = lines("virsh-qemu-monitor-event.txt").map(parseMonitorEventLine)
    expect(events.every((e) => e?.event === "VSERPORT_CHANGE" && e.domain === "lv-test")).toBe(true)
    const agent = events.map((e) => serialChange(e!)).filter((c) => c?.device === "ua-vdagent")
    expect(agent).toEqual([{ device: "ua-vdagent", open: true }])
    expect(events[5]!.stampMs).toBeCloseTo(1796548302377.447, 3)
    // Stamps of one device are ≥ 1 s apart after the first (QEMU's rate limit): the control channel's flapping.
    const ctl = events.filter((e) => e!.data?.id === "channel1").map((e) => e!.stampMs)
    for (let i = 2; i < ctl.length; i++) expect(ctl[i]! - ctl[i - 1]!).toBeGreaterThan(900)
  })

  it("null data, short microseconds, and lines that are not events", () => {
    expect(parseMonitorEventLine("event RESUME at 1796547877.5 for domain 'x': <null>")).toMatchObject({ event: "RESUME", data: undefined, stampMs: 1796547877500 })
    expect(parseMonitorEventLine("event VSERPORT_CHANGE at 1.000001 for domain 'x': {broken")).toBeUndefined()
    expect(parseMonitorEventLine("2026-12-06 09:04:37.356+0000: event VSERPORT_CHANGE for domain 'lv-test': {}")).toBeUndefined() // --timestamp is not used
    expect(serialChange(parseMonitorEventLine(`event VSERPORT_CHANGE at 1.0 for domain 'x': {"open":"yes","id":"a"}`)!)).toBeUndefined()
  })
})

/** A VmCore stand-in that records every level reported and the probe it is given. */
class Sink implements PortSink {
  port: PortLevel = "unknown"
  readonly reports: Array<[PortLevel, string]> = []
  probe: (() => void) | undefined
  portLevel(level: PortLevel, cause: string): void {
    this.reports.push([level, cause])
    this.port = level
  }
  setPortProbe(p: (() => void) | undefined): void {
    this.probe = p
  }
}

describe("LibvirtPortWatch", () => {
  let now = 1_000_000
  beforeEach(() => {
    vi.useFakeTimers()
    now = 1_000_000
  })
  afterEach(() => vi.useRealTimers())
  const make = () => {
    const sink = new Sink()
    const reads: string[] = []
    const w = new LibvirtPortWatch(sink, (why) => reads.push(why), () => now)
    return { sink, reads, w }
  }

  it("an open event while open (a close and reopen folded by the rate limit) reports closed before open", () => {
    const { sink, w } = make()
    w.xmlState("open", now, "start")
    w.serialChange(true, now)
    expect(sink.reports.map(([l]) => l)).toEqual(["open", "closed", "open"])
  })

  it("an XML read that contradicts a fresh event is libvirt not yet caught up: ignored, read again once settled", () => {
    const { sink, reads, w } = make()
    w.xmlState("open", now, "start")
    w.serialChange(false, now)
    now += 100
    w.xmlState("open", now, "confirm") // stale: libvirt's worker has not applied the close yet
    expect(sink.port).toBe("closed")
    vi.advanceTimersByTime(SETTLE_MS + 200)
    expect(reads).toContain("confirm VSERPORT_CHANGE")
    now += SETTLE_MS
    w.xmlState("closed", now, "confirm")
    expect(sink.port).toBe("closed")
    now += 10_000
    w.xmlState("open", now, "reconcile") // settled and different: an event was missed, the XML is the truth
    expect(sink.port).toBe("open")
  })

  it("agent bytes from a closed port: the level waits for the held open event, else the XML after a while", () => {
    const { sink, reads, w } = make()
    w.xmlState("closed", now, "start")
    sink.probe!()
    vi.advanceTimersByTime(500)
    expect(reads).toEqual([])
    w.serialChange(true, now) // QEMU's held event
    vi.advanceTimersByTime(1_000)
    expect(reads).toEqual([]) // the probe was answered by the event
    expect(sink.port).toBe("open")
    w.serialChange(false, now)
    sink.probe!()
    vi.advanceTimersByTime(1_400)
    expect(reads).toEqual(["agent bytes while closed"])
  })

  it("a stopped domain reports closed; after end() nothing more is reported", () => {
    const { sink, w } = make()
    w.xmlState("open", now, "start")
    w.guestGone("domain Stopped Destroyed")
    expect(sink.port).toBe("closed")
    w.end()
    w.serialChange(true, now)
    expect(sink.reports.length).toBe(2)
    expect(sink.probe).toBeUndefined()
  })
})
