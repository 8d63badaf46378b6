// The local worker harness itself: the real bundle answers on a free port, and restart() replaces workerd on that port.
import { afterAll, beforeAll, expect, it } from "vitest"
import { startWorker, type LocalWorker } from "../harness/worker.ts"

let worker: LocalWorker
beforeAll(async () => {
  worker = await startWorker()
})
afterAll(() => worker?.stop())

it("serves /healthz from the bundle and again after a restart on the same port", async () => {
  expect(await (await fetch(`${worker.url}/healthz`)).text()).toBe("ok")
  await worker.restart()
  expect(await (await fetch(`${worker.url}/healthz`)).text()).toBe("ok")
})
