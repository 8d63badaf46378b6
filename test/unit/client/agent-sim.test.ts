// The agent simulator (npm start's stand-in for spice-vdagent) against bytes captured from the real agent 0.22.1:
// fed the client's captured messages, it must answer with the agent's captured bytes, and keep the daemon's rules
// (grab serials, the exact MONITORS_CONFIG size, CLIENT_DISCONNECTED resets, chunk limit).
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { createConnection } from "node:net"
import { describe, expect, it } from "vitest"
import { AgentSim, type FileSink, type SimEvent } from "../../harness/agent-sim.ts"
import { startAgentSim } from "../../harness/agent-sim-server.ts"
import { GOLDEN_DIR, parseGolden } from "../../golden/load.ts"
import { encodeChunkedMessage } from "../../../src/protocol/chunker.ts"
import { ClipboardType, MessageType, Port } from "../../../src/protocol/constants.ts"
import { codecOptionsFor, encodeMessage } from "../../../src/protocol/message-codec.ts"
import type { AgentMessage } from "../../../src/protocol/messages.ts"
import { defaultClientCaps } from "../../../src/client/index.ts"
import { concat } from "./helpers.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

const golden = (name: string): Uint8Array => parseGolden(name, readFileSync(join(GOLDEN_DIR, `${name}.hex`), "utf8")).bytes

const memoryFiles = (): FileSink & { files: Map<string, Uint8Array> } => {
  const files = new Map<string, Uint8Array>()
  return {
    files,
    create: async (name) => (files.set(name, new Uint8Array(0)), name),
    append: async (path, data) => void files.set(path, concat(files.get(path)!, data)),
    remove: async (path) => void files.delete(path),
  }
}

const make = () => {
  const out: Uint8Array[] = []
  const events: SimEvent[] = []
  const files = memoryFiles()
  const sim = new AgentSim({ write: (b) => out.push(b), files, event: (e) => events.push(e) })
  const take = (): Uint8Array => concat(...out.splice(0))
  return { sim, take, events, files }
}

/** A client message as the SDK's relay would put it on the wire (chunks ≤ 2048). */
const client = (msg: AgentMessage, port: number = Port.Client): Uint8Array => {
  const r = encodeMessage(msg, codecOptionsFor([SPICE_VDAGENT_CAPS]))
  if (r._tag !== "Ok") throw new Error(r.detail)
  return encodeChunkedMessage(port, MessageType[msg._tag], r.value)
}

const settle = () => new Promise((r) => setImmediate(r))

describe("agent simulator, byte for byte against the real agent", () => {
  it("announces with request=1 when the host first connects, and only then", () => {
    const { sim, take } = make()
    sim.hostConnected()
    expect(take()).toEqual(golden("captured-agent-announce-request"))
    sim.hostDisconnected()
    sim.hostConnected()
    expect(take()).toEqual(new Uint8Array(0))
  })

  it("answers a client announce, a monitors config, and a file transfer as the agent did", async () => {
    const { sim, take, files } = make()
    sim.hostConnected()
    take()
    sim.receive(golden("captured-client-announce-request"))
    expect(take()).toEqual(golden("captured-agent-announce-reply"))
    sim.receive(golden("captured-client-monitors-config"))
    expect(take()).toEqual(golden("captured-agent-reply-monitors-config"))
    sim.receive(golden("captured-client-file-xfer-start"))
    await settle()
    expect(take()).toEqual(golden("captured-agent-file-xfer-status-can-send-data"))
    sim.receive(golden("captured-client-file-xfer-data"))
    await settle()
    expect(take()).toEqual(golden("captured-agent-file-xfer-status-success"))
    expect(new TextDecoder().decode(files.files.get("golden.txt"))).toMatch(/^(golden file line 0123456789\n)+/)
    expect(files.files.get("golden.txt")).toHaveLength(2100)
  })

  it("fetches a client grab like a guest clipboard manager, and grabs for a guest copy", async () => {
    const { sim, take, events } = make()
    sim.hostConnected()
    sim.receive(golden("captured-client-announce-request"))
    take()
    sim.receive(golden("captured-client-clipboard-grab"))
    expect(take()).toEqual(golden("captured-agent-clipboard-request"))
    sim.receive(golden("captured-client-clipboard-data"))
    await settle()
    expect(events).toContainEqual({ _tag: "ClientClipboard", selection: 0, type: 1, data: new TextEncoder().encode("golden: client clipboard text") })
    const fresh = make()
    fresh.sim.hostConnected()
    fresh.sim.receive(golden("captured-client-announce-request"))
    fresh.take()
    fresh.sim.setGuestClipboard(new TextEncoder().encode("golden: guest clipboard text"))
    expect(fresh.take()).toEqual(golden("captured-agent-clipboard-grab"))
    fresh.sim.receive(golden("captured-client-clipboard-request"))
    expect(fresh.take()).toEqual(golden("captured-agent-clipboard-data"))
  })
})

describe("agent simulator rules", () => {
  const ready = () => {
    const m = make()
    m.sim.hostConnected()
    m.sim.receive(client({ _tag: "AnnounceCapabilities", request: true, caps: defaultClientCaps }))
    m.take()
    return m
  }

  it("drops a MONITORS_CONFIG carrying the physical-size array, unanswered, as 0.22.1 does", () => {
    const { sim, take } = ready()
    sim.receive(client({ _tag: "MonitorsConfig", flags: 3, monitors: [{ width: 800, height: 600, depth: 32, x: 0, y: 0 }], physicalSize: [{ width: 300, height: 200 }] }))
    expect(take()).toEqual(new Uint8Array(0))
  })

  it("keeps the grab-serial rule: equal accepted, one below wins a tie, anything else discarded", () => {
    const { sim, events } = ready()
    const offers = () => events.filter((e) => e._tag === "Log" && e.line.startsWith("grab discarded")).length
    sim.receive(client({ _tag: "ClipboardGrab", selection: 0, serial: 0, types: [ClipboardType.Utf8Text] }))
    sim.receive(client({ _tag: "ClipboardGrab", selection: 0, serial: 0, types: [ClipboardType.Utf8Text] })) // tie
    expect(offers()).toBe(0)
    sim.receive(client({ _tag: "ClipboardGrab", selection: 0, serial: 5, types: [ClipboardType.Utf8Text] }))
    expect(offers()).toBe(1)
  })

  it("resets a half message of the client port on CLIENT_DISCONNECTED", () => {
    const { sim, take } = ready()
    const whole = client({ _tag: "FileXferStart", id: 9, name: "x".repeat(3000), size: 1 })
    sim.receive(whole.subarray(0, 2056)) // the first chunk only
    sim.receive(golden("captured-client-disconnected"))
    sim.receive(client({ _tag: "AnnounceCapabilities", request: true, caps: defaultClientCaps }))
    expect(take()).toEqual(golden("captured-agent-announce-reply"))
  })

  it("starts its stream afresh after a chunk over 2048 bytes", () => {
    const { sim, take, events } = ready()
    const big = new Uint8Array(8 + 3000)
    new DataView(big.buffer).setUint32(0, 1, true)
    new DataView(big.buffer).setUint32(4, 3000, true)
    sim.receive(big.subarray(0, 8))
    expect(events.some((e) => e._tag === "Log" && e.line.includes("reopening"))).toBe(true)
    sim.receive(client({ _tag: "AnnounceCapabilities", request: true, caps: defaultClientCaps }))
    expect(take()).toEqual(golden("captured-agent-announce-reply"))
  })
})

describe("agent simulator server", () => {
  it("serves one host at a time on its chardev socket and writes transfers into its folder", async () => {
    const h = await startAgentSim()
    const s = createConnection(h.hostSocketPath)
    const got: Buffer[] = []
    s.on("data", (d: Buffer) => got.push(d))
    await new Promise<void>((r) => s.once("connect", () => r()))
    const second = createConnection(h.hostSocketPath)
    let secondGot = 0
    second.on("data", (d: Buffer) => (secondGot += d.length))
    await new Promise<void>((r) => second.once("connect", () => r()))
    s.write(golden("captured-client-announce-request"))
    s.write(golden("captured-client-file-xfer-start"))
    s.write(golden("captured-client-file-xfer-data"))
    const received = new Promise<SimEvent>((r) => h.events.on("event", (e) => e._tag === "FileReceived" && r(e)))
    const e = await received
    expect(e).toMatchObject({ _tag: "FileReceived", path: join(h.xferDir, "golden.txt"), size: 2100 })
    expect(readFileSync(join(h.xferDir, "golden.txt"))).toHaveLength(2100)
    expect(concat(...got).subarray(0, 36)).toEqual(golden("captured-agent-announce-request"))
    expect(secondGot).toBe(0)
    s.destroy()
    second.destroy()
    await h.stop()
  })
})
