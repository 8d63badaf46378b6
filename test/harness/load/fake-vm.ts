// One VM for load tests, in process: the agent simulator (test/harness/agent-sim.ts, spice-vdagent 0.22.1 behaviour)
// behind the fake host bridge (test/harness/fake-bridge.ts, keeping to the relay's window as the real bridge does) over
// a WebSocket to the relay. It counts what a real bridge would see go wrong: frames that do not decode, writes out of
// position, guest-bound bytes the agent could not parse (torn or badly chunked).
import WebSocket from "ws"
import { decodeRelayToBridge, encodeBridgeToRelay } from "../../../src/link/bridge-codec.ts"
import { AgentSim, type SimEvent } from "../agent-sim.ts"
import { FakeBridge } from "../fake-bridge.ts"

export interface FakeVmOptions {
  readonly url: string
  readonly token: string
  readonly onEvent: (e: SimEvent) => void
}

export interface VmFaults {
  /** Relay frames that did not decode, writes at an unexpected position, agent-side parse errors. */
  badFrames: number
  readonly outOfPosition: number
  agentErrors: string[]
}

export class FakeVm {
  readonly sim: AgentSim
  private readonly bridge: FakeBridge
  readonly faults: VmFaults
  private ws: WebSocket | undefined
  closed = false

  constructor(private readonly o: FakeVmOptions) {
    const bridge = (this.bridge = new FakeBridge((f) => this.ws?.send(encodeBridgeToRelay(f)), {
      name: "load",
      window: true,
      // Whole messages go to the agent only once their last piece is here (what the real bridge guarantees).
      toGuest: (_port, bytes) => this.sim.receive(bytes),
    }))
    this.faults = {
      badFrames: 0,
      get outOfPosition() {
        return bridge.outOfPosition
      },
      agentErrors: [],
    }
    this.sim = new AgentSim({
      write: (bytes) => this.bridge.agentWrites(bytes),
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
      ws.on("open", () => this.bridge.attach((f) => ws.send(encodeBridgeToRelay(f))))
      ws.on("message", (data: Buffer) => {
        const d = decodeRelayToBridge(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        if (d._tag === "Invalid") return void this.faults.badFrames++
        this.bridge.onFrame(d.value)
        if (d.value.t === "welcome") {
          this.sim.hostConnected()
          resolve()
        }
      })
      ws.on("error", (e) => reject(e))
      ws.on("close", () => {
        if (this.ws === ws) this.ws = undefined
      })
    })
  }

  close(): void {
    this.closed = true
    this.ws?.close()
  }
}
