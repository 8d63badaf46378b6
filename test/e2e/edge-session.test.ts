// A full session through the locally running worker (raw Miniflare on the real bundle, msgpackr without eval): a Node
// console and a fake bridge on plain `ws` exchange real vdagent messages, survive a workerd restart, and resume.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { decodeRelayToBridge, encodeBridgeToRelay } from "../../src/link/bridge-codec.ts"
import { decodeRelayToClient, encodeClientToRelay } from "../../src/link/client-codec.ts"
import { LINK_VERSION, type ClientToRelay, type RelayToClient, type Role } from "../../src/link/types.ts"
import { encodeChunkedMessage } from "../../src/protocol/chunker.ts"
import { MessageType, Port } from "../../src/protocol/constants.ts"
import { startWorker, type LocalWorker } from "../harness/worker.ts"
import { FakeBridge } from "../harness/fake-bridge.ts"
import { SPICE_VDAGENT_CAPS } from "../../src/protocol/known.ts"

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)))
const AGENT_CAPS = SPICE_VDAGENT_CAPS
const announce = encodeChunkedMessage(Port.Client, MessageType.AnnounceCapabilities, hex("01000000e78d0300"))
const grabPayload = hex("000000000000000001000000")
const grab = encodeChunkedMessage(Port.Client, MessageType.ClipboardGrab, grabPayload)
const release = encodeChunkedMessage(Port.Client, MessageType.ClipboardRelease, hex("00000000"))

let worker: LocalWorker
beforeAll(async () => {
  worker = await startWorker()
})
afterAll(() => worker?.stop())

const connect = (path: string, token: string): Promise<WebSocket> =>
  new Promise((done, fail) => {
    const ws = new WebSocket(`${worker.wsUrl}${path}`, { headers: { Authorization: `Bearer ${token}` } })
    ws.binaryType = "nodebuffer"
    ws.once("open", () => done(ws))
    ws.once("unexpected-response", (_q, res) => fail(new Error(`upgrade refused: ${res.statusCode}`)))
    ws.once("error", fail)
  })

const bytesOf = (data: WebSocket.RawData): Uint8Array => {
  const b = data as Buffer
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

const attachBridge = async (bridge: FakeBridge, vm: string): Promise<WebSocket> => {
  const ws = await connect(`/v1/vms/${vm}/agent`, await worker.mint({ tenant: "acme", vm, role: "bridge" }))
  ws.on("message", (data) => {
    const d = decodeRelayToBridge(bytesOf(data))
    if (d._tag !== "Ok") throw new Error(`undecodable relay frame: ${d.detail}`)
    bridge.onFrame(d.value)
  })
  bridge.attach((f) => ws.send(encodeBridgeToRelay(f)))
  return ws
}

/** A Node console: keeps whole agent messages (by seq) and every other frame. */
class Console {
  readonly messages: Array<{ seq: number; type: number; data: Uint8Array }> = []
  readonly frames: RelayToClient[] = []
  private parts = new Map<number, { type: number; chunks: Uint8Array[] }>()
  private waiters: Array<() => void> = []
  welcome: Extract<RelayToClient, { t: "welcome" }> | undefined
  ws!: WebSocket

  async open(vm: string, role: Role, resume?: { token: string; lastSeq: number }): Promise<void> {
    this.ws = await connect(`/v1/vms/${vm}/console`, await worker.mint({ tenant: "acme", vm, role }))
    this.ws.on("message", (data) => this.onFrame(data))
    this.send({ t: "hello", v: LINK_VERSION, client: "node-e2e", role, caps: [AGENT_CAPS], ...(resume && { resume: resume.token, lastSeq: resume.lastSeq }) })
    const w = await this.waitFor((f) => f.t === "welcome")
    this.welcome = w as Extract<RelayToClient, { t: "welcome" }>
    this.send({ t: "credit", bytes: 1 << 20 })
  }

  send(f: ClientToRelay): void {
    this.ws.send(encodeClientToRelay(f))
  }

  private onFrame(data: WebSocket.RawData): void {
    const d = decodeRelayToClient(bytesOf(data))
    if (d._tag !== "Ok") throw new Error(`undecodable relay frame: ${d.detail}`)
    const f = d.value
    this.frames.push(f)
    if (f.t === "msg") this.parts.set(f.seq, { type: f.type, chunks: [f.data.slice()] })
    if (f.t === "more") this.parts.get(f.seq)?.chunks.push(f.data.slice())
    if ((f.t === "msg" || f.t === "more") && f.end) {
      const p = this.parts.get(f.seq)!
      this.parts.delete(f.seq)
      this.messages.push({ seq: f.seq, type: p.type, data: new Uint8Array(Buffer.concat(p.chunks)) })
    }
    if (f.t === "abort") this.parts.delete(f.seq)
    for (const w of this.waiters.splice(0)) w()
  }

  async waitFor(pred: (f: RelayToClient) => boolean): Promise<RelayToClient> {
    for (;;) {
      const f = this.frames.find(pred)
      if (f !== undefined) return f
      await new Promise<void>((r) => this.waiters.push(r))
    }
  }

  async message(type: number): Promise<{ seq: number; type: number; data: Uint8Array }> {
    await this.waitFor(() => this.messages.some((m) => m.type === type))
    return this.messages.find((m) => m.type === type)!
  }
}

describe("edge session through the local worker", () => {
  it("holds a session: agent → console, console → guest, and survives a workerd restart", async () => {
    const bridge = new FakeBridge(() => {})
    await attachBridge(bridge, "vm-e2e")
    bridge.agentWrites(announce)
    const c = new Console()
    await c.open("vm-e2e", "controller")
    expect(c.welcome).toMatchObject({ role: "controller" })

    bridge.agentWrites(grab, 7) // in odd pieces: the relay reassembles across data frames
    const m = await c.message(MessageType.ClipboardGrab)
    expect(m.data).toEqual(grabPayload)

    c.send({ t: "msg", id: 1, type: MessageType.ClipboardGrab, size: grabPayload.length, data: grabPayload, end: true })
    await c.waitFor((f) => f.t === "ack" && f.id === 1)
    await bridge.sync()
    expect(bridge.guest.filter((g) => g.type === MessageType.ClipboardGrab).map((g) => g.payload)).toEqual([grabPayload])

    await worker.restart()
    await attachBridge(bridge, "vm-e2e")
    const again = new Console()
    await again.open("vm-e2e", "controller", { token: c.welcome!.resume, lastSeq: m.seq })
    bridge.agentWrites(release)
    const r = await again.message(MessageType.ClipboardRelease)
    expect(r.seq).toBeGreaterThan(m.seq)
    expect(again.messages.filter((x) => x.type === MessageType.ClipboardGrab)).toEqual([]) // nothing replayed twice

    const status = (await (
      await fetch(`${worker.url}/v1/vms/vm-e2e/status`, { headers: { Authorization: `Bearer ${await worker.mint({ tenant: "acme", vm: "vm-e2e", role: "operator" })}` } })
    ).json()) as { agent: { bridge: boolean; caps: number[] }; clients: { controller: number } }
    expect(status).toMatchObject({ agent: { bridge: true, caps: [AGENT_CAPS] }, clients: { controller: 1 } })
  })
})
