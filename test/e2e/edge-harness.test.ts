// The local worker harness itself: the real bundle answers on a free port, and restart() really replaces the workerd
// process (every socket drops) on the same port while Durable Object storage survives.
import { afterAll, beforeAll, expect, it } from "vitest"
import WebSocket from "ws"
import { startWorker, type LocalWorker } from "../harness/worker.ts"

let worker: LocalWorker
beforeAll(async () => {
  worker = await startWorker()
})
afterAll(() => worker?.stop())

const open = (path: string, token: string): Promise<{ ws: WebSocket; status: number }> =>
  new Promise((done, fail) => {
    const ws = new WebSocket(`${worker.wsUrl}${path}`, ["vdrelay.v1", `vdrelay.token.${token}`])
    ws.once("open", () => done({ ws, status: 101 }))
    ws.once("unexpected-response", (_req, res) => done({ ws, status: res.statusCode ?? 0 }))
    ws.once("error", fail)
  })

it("serves /healthz from the bundle", async () => {
  expect(await (await fetch(`${worker.url}/healthz`)).text()).toBe("ok")
})

it("restart() drops every socket and keeps Durable Object storage (a used single-use token stays used)", async () => {
  const token = await worker.mint({ tenant: "acme", vm: "vm-r", role: "viewer", singleUse: true })
  const first = await open("/v1/vms/vm-r/console", token)
  expect(first.status).toBe(101)
  expect(first.ws.protocol).toBe("vdrelay.v1")
  const closed = new Promise<number>((done) => first.ws.once("close", (code) => done(code)))
  await worker.restart()
  expect(await closed).toBe(1006)
  expect(await (await fetch(`${worker.url}/healthz`)).text()).toBe("ok")
  expect((await open("/v1/vms/vm-r/console", token)).status).toBe(401)
  const fresh = await open("/v1/vms/vm-r/console", await worker.mint({ tenant: "acme", vm: "vm-r", role: "viewer", singleUse: true }))
  expect(fresh.status).toBe(101)
  fresh.ws.close()
})
