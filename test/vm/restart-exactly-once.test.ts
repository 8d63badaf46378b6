// Exactly once into the real guest across a raw workerd restart: the real spice-vdagent inside a real QEMU guest, the
// bridge process on the VM's chardev and QMP sockets, workerd, and the SDK. A 4 MiB file streams to the guest and
// workerd is killed (-9) and restarted at a share of it (at 100 %: when the last block is acknowledged), the console
// reconnecting after the bridge; the file then lands byte-exact in the guest's transfer folder
// (sha-256), or the SDK reports it failed and the agent, told, leaves no partial file. The daemon never loses sync.
import { createHash } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ClientError, type Session, connect } from "../../src/client/index.ts"
import { type BridgeProcess, startBridgeProcess } from "../harness/bridge-process.ts"
import { type LocalWorker, startWorker } from "../harness/worker.ts"
import { AGENT_DEVICE, type Vm, startVm, vmTestsEnabled } from "./index.ts"

const TENANT = "vm-tests"
const VM = "vm-once"
const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex")

const until = async (pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Position-dependent bytes: a doubled or swapped 64 KiB block changes the file's hash. */
const fileBytes = (size: number, salt: number): Uint8Array => {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (Math.imul(i + salt, 2654435761) >>> 24) ^ (i >>> 16)
  return out
}

describe.skipIf(!vmTestsEnabled())("exactly once into the real guest across a workerd restart", () => {
  let vm: Vm
  let worker: LocalWorker
  let bridge: BridgeProcess
  let session: Session

  const agentReady = (): boolean => session.state === "open" && session.role === "controller" && session.agent.connected && session.agent.caps !== null

  beforeAll(async () => {
    vm = await startVm()
    worker = await startWorker()
    bridge = await startBridgeProcess({
      mint: worker.mint,
      tenant: TENANT,
      edgeBase: worker.wsUrl,
      vms: [{ id: VM, chardev: vm.agentSocket, qmp: { socket: vm.qmpSocket, device: AGENT_DEVICE } }],
      reconnect: { baseMs: 50, capMs: 1000 },
    })
    session = await connect({
      url: `${worker.wsUrl}/v1/vms/${VM}/console`,
      token: () => worker.mint({ tenant: TENANT, vm: VM, role: "controller", ttl: 3600 }),
      // Back after the bridge (which retries from 50 ms): the order in which a replay after the restart would reach no
      // console unless the relay waits for it (docs/protocol.md client rule 7).
      reconnect: { minDelayMs: 1000, maxDelayMs: 1000 },
    })
    await until(agentReady, "the console sees the guest's agent", 120_000)
  }, 600_000)

  afterAll(async () => {
    await session?.close()
    await bridge?.stop()
    await worker?.stop()
    await vm?.stop()
  })

  // 100 %: every block acknowledged, the agent's final FILE_XFER_STATUS on its way (what a restart must not lose).
  for (const share of [0.2, 0.4, 0.6, 0.8, 1]) {
    it(`workerd killed at ${share * 100}% of a 4 MiB file: byte-exact in the guest, or failed on both ends`, async () => {
      await until(agentReady, "the console sees the guest's agent", 120_000)
      await vm.guest.clearFiles()
      const mark = await vm.guest.daemonLogMark()
      const name = `once-${share * 100}.bin`
      const data = fileBytes(4 * 1024 * 1024, Math.round(share * 100))
      const t = session.sendFile({ name, data })
      await until(() => t.sent >= share * data.length || !t.active, "the file crossing", 300_000)
      await worker.restart()
      // Every transfer settles (never neither): a liveness bound, far above the seconds a settled one takes here.
      const outcome = await Promise.race([
        t.done.then(() => "done", (e: ClientError) => `failed: ${e.reason}`),
        new Promise<string>((r) => setTimeout(() => r(`never settled (status ${t.status}, ${t.sent} of ${t.size} B acknowledged)`), 240_000)),
      ])
      expect(outcome.startsWith("never settled"), outcome).toBe(false)
      if (outcome === "done") {
        const files = await vm.guest.files()
        expect(files.filter((f) => f.name === name).map((f) => [f.size, f.sha256])).toEqual([[data.length, sha256(data)]])
      } else {
        expect(t.status === "failed" || t.status === "cancelled").toBe(true)
        // The agent was told (or lost its client) and removed what it had of the file.
        await until(async () => !(await vm.guest.files()).some((f) => f.name === name), `no file ${name} left in the guest (the SDK said ${outcome})`, 60_000)
      }
      expect(await vm.guest.syncErrors(mark)).toEqual([])
      const suppressed = bridge.events().filter((e) => e.event === "duplicate-suppressed").length
      console.log(`[vm] workerd restart at ${share * 100}%: ${outcome}; repeats the bridge did not write so far: ${suppressed}`)
    }, 600_000)
  }
})
