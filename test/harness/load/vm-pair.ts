// One load-test session: a FakeVm (bridge + agent simulator) and an SDK console on the same VM, and the three exchanges
// each round makes — console→guest clipboard, guest→console clipboard, pointer moves — each checked byte for byte.
import { connect, type Session } from "../../../src/client/index.ts"
import type { SimEvent } from "../agent-sim.ts"
import { withTimeout } from "../with-timeout.ts"
import { FakeVm } from "./fake-vm.ts"

export interface PairOutcome {
  /** Exchanges that completed with the exact bytes. */
  ok: number
  /** Exchanges whose data differed from what was sent (a torn or mixed-up message). */
  torn: number
  /** Exchanges that never completed, or a notice/error the SDK reported. */
  lost: number
  readonly problems: string[]
}

export class VmPair {
  readonly out: PairOutcome = { ok: 0, torn: 0, lost: 0, problems: [] }
  session!: Session
  private readonly waiters: Array<(e: SimEvent) => void> = []
  readonly vm: FakeVm

  constructor(
    readonly id: string,
    private readonly urls: { readonly agent: string; readonly console: string },
    bridgeToken: string,
    private readonly consoleToken: () => Promise<string>,
    private readonly timeoutMs: number,
  ) {
    this.vm = new FakeVm({ url: urls.agent, token: bridgeToken, onEvent: (e) => this.waiters.forEach((w) => w(e)) })
  }

  async start(): Promise<void> {
    await this.vm.connect()
    this.session = await connect({ url: this.urls.console, token: this.consoleToken, clientName: this.id, heartbeatMs: 0, reconnect: false })
    this.session.on("notice", (n) => this.problem(`notice ${n.code}: ${n.detail}`))
    this.session.on("error", (e) => this.problem(`sdk error ${e.reason}: ${e.message}`))
    this.session.on("close", (c) => this.vm.closed || this.problem(`console link closed ${c.code}`))
    await withTimeout(this.until(() => this.session.agent.connected && this.session.agent.caps !== null), this.timeoutMs, `${this.id}: agent caps`)
  }

  private problem(p: string): void {
    this.out.lost++
    if (this.out.problems.length < 5) this.out.problems.push(`${this.id}: ${p}`)
  }

  private until(pred: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const tick = (): void => (pred() ? resolve() : void setTimeout(tick, 10))
      tick()
    })
  }

  private simEvent<T extends SimEvent["_tag"]>(tag: T, pred: (e: Extract<SimEvent, { _tag: T }>) => boolean): Promise<Extract<SimEvent, { _tag: T }>> {
    return new Promise((resolve) => {
      const w = (e: SimEvent): void => {
        if (e._tag !== tag || !pred(e as Extract<SimEvent, { _tag: T }>)) return
        this.waiters.splice(this.waiters.indexOf(w), 1)
        resolve(e as Extract<SimEvent, { _tag: T }>)
      }
      this.waiters.push(w)
    })
  }

  private check(what: string, got: string, want: string): void {
    if (got === want) this.out.ok++
    else {
      this.out.torn++
      if (this.out.problems.length < 5) this.out.problems.push(`${this.id}: ${what}: ${got.length} bytes received, ${want.length} sent`)
    }
  }

  /** One round: a clipboard each way and a burst of pointer moves; failures are counted, never thrown. */
  async round(n: number, textBytes: number): Promise<void> {
    const pad = "x".repeat(Math.max(0, textBytes - 40))
    try {
      const toGuest = `c2g ${this.id} ${n} ${pad}`
      const arrived = this.simEvent("ClientClipboard", () => true)
      await this.session.setClipboardText(toGuest)
      const got = await withTimeout(arrived, this.timeoutMs, `${this.id}: console→guest clipboard`)
      this.check("console→guest clipboard", new TextDecoder().decode(got.data), toGuest)

      const toConsole = `g2c ${this.id} ${n} ${pad}`
      const grabbed = this.session.next("clipboard-grab")
      this.vm.sim.setGuestClipboard(new TextEncoder().encode(toConsole))
      await withTimeout(grabbed, this.timeoutMs, `${this.id}: guest grab`)
      this.check("guest→console clipboard", await withTimeout(this.session.requestClipboardText(), this.timeoutMs, `${this.id}: guest→console clipboard`), toConsole)

      const last = n * 8 + 7
      const moved = this.simEvent("Mouse", (e) => e.x === last)
      for (let k = n * 8; k <= last; k++) this.session.sendMouse({ x: k, y: 1 })
      await withTimeout(moved, this.timeoutMs, `${this.id}: last pointer position`)
      this.out.ok++
    } catch (err) {
      this.problem(err instanceof Error ? err.message : String(err))
    }
  }

  async stop(): Promise<void> {
    this.vm.close()
    await this.session?.close().catch(() => {})
  }
}
