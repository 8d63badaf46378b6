// One VM for load tests, in process: the agent simulator (test/harness/agent-sim.ts, spice-vdagent 0.22.1 behaviour)
// behind a minimal host bridge that speaks the bridge link to the relay (hello, data within the window, write → whole
// messages to the agent → wrote, abort, rewind, ack). It counts what a real bridge would see go wrong: frames that do
// not decode, writes out of position, guest-bound bytes the agent could not parse (torn or badly chunked).
import WebSocket from "ws"
import { decodeRelayToBridge, encodeBridgeToRelay } from "../../../src/link/bridge-codec.ts"
import type { RelayToBridge } from "../../../src/link/types.ts"
import { AgentSim, type SimEvent } from "../agent-sim.ts"

const EPOCH = 1

export interface FakeVmOptions {
  readonly url: string
  readonly token: string
  readonly onEvent: (e: SimEvent) => void
}

export interface VmFaults {
  /** Relay frames that did not decode, writes at an unexpected position, agent-side parse errors. */
  badFrames: number
  outOfPosition: number
  agentErrors: string[]
}

export class FakeVm {
  readonly sim: AgentSim
  readonly faults: VmFaults = { badFrames: 0, outOfPosition: 0, agentErrors: [] }
  private ws: WebSocket | undefined
  /** Agent bytes not yet acknowledged by the relay, from position `acked`. */
  private retained: Uint8Array[] = []
  private acked = 0
  private sent = 0
  private window = 0
  private welcomed = false
  /** Guest-bound side: next position expected, and each port's message being received. */
  private recvPos = 0
  private wrote = 0
  private readonly partial = new Map<number, { start: number; parts: Uint8Array[] }>()
  closed = false

  constructor(private readonly o: FakeVmOptions) {
    this.sim = new AgentSim({
      write: (bytes) => this.agentWrote(bytes),
      files: { create: async (n) => n, append: async () => {}, remove: async () => {} },
      event: (e) => {
        if (e._tag === "Log" && /error|lost sync|refus|dropped message/.test(e.line)) this.faults.agentErrors.push(e.line)
        o.onEvent(e)
      },
    })
  }

  /** Opens (or re-opens) the tunnel; resolves at the relay's welcome. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.o.url, ["vdrelay.v1"], { headers: { Authorization: `Bearer ${this.o.token}` } })
      ws.binaryType = "nodebuffer"
      this.ws = ws
      this.welcomed = false
      ws.on("open", () => ws.send(encodeBridgeToRelay({ t: "hello", v: 1, bridge: "load", epoch: EPOCH, chardev: true, from: this.acked, wrote: this.wrote, port: "open" })))
      ws.on("message", (data: Buffer) => {
        const d = decodeRelayToBridge(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        if (d._tag === "Invalid") return void this.faults.badFrames++
        if (d.value.t === "welcome") resolve()
        this.frame(d.value)
      })
      ws.on("error", (e) => reject(e))
      ws.on("close", () => {
        this.welcomed = false
        if (this.ws === ws) this.ws = undefined
      })
    })
  }

  close(): void {
    this.closed = true
    this.ws?.close()
  }

  private frame(f: RelayToBridge): void {
    switch (f.t) {
      case "welcome":
        this.window = f.window
        this.welcomed = true
        this.ackTo(f.ack)
        this.sent = this.acked
        this.sim.hostConnected()
        return this.pump()
      case "ack":
        this.ackTo(f.pos)
        return this.pump()
      case "rewind":
        this.sent = Math.max(this.acked, f.pos)
        return this.pump()
      case "write":
        return this.guestWrite(f)
      case "abort":
        if (f.pos !== this.recvPos) this.faults.outOfPosition++
        this.partial.delete(f.port)
        return this.sendWrote()
      case "pong":
      case "error":
        return
    }
  }

  /** Whole messages go to the agent only once their last piece is here (what the real bridge guarantees). */
  private guestWrite(f: Extract<RelayToBridge, { t: "write" }>): void {
    if (f.pos !== this.recvPos) this.faults.outOfPosition++
    this.recvPos = f.pos + f.data.length
    const p = this.partial.get(f.port) ?? { start: f.pos, parts: [] }
    p.parts.push(f.data.slice())
    if (!f.end) return void this.partial.set(f.port, p)
    this.partial.delete(f.port)
    for (const part of p.parts) this.sim.receive(part)
    this.sendWrote()
  }

  private sendWrote(): void {
    let pos = this.recvPos
    for (const p of this.partial.values()) pos = Math.min(pos, p.start)
    if (pos <= this.wrote) return
    this.wrote = pos
    this.ws?.send(encodeBridgeToRelay({ t: "wrote", epoch: EPOCH, pos }))
  }

  private agentWrote(bytes: Uint8Array): void {
    this.retained.push(bytes.slice())
    this.pump()
  }

  private ackTo(pos: number): void {
    while (this.retained.length > 0 && this.acked + this.retained[0]!.length <= pos) this.acked += this.retained.shift()!.length
  }

  /** Sends retained agent bytes from `sent` while the relay's window allows. */
  private pump(): void {
    if (!this.welcomed || this.ws === undefined) return
    let at = this.acked
    for (const b of this.retained) {
      const end = at + b.length
      if (end > this.sent) {
        if (end - this.acked > this.window && this.sent > this.acked) return
        const from = Math.max(0, this.sent - at)
        this.ws.send(encodeBridgeToRelay({ t: "data", epoch: EPOCH, pos: at + from, bytes: b.subarray(from) }))
        this.sent = end
      }
      at = end
    }
  }
}
