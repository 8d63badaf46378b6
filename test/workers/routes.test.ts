// Every route of the Worker and every HTTP refusal: 404, 405 with Allow, 426, 400/413 on policy bodies, 401 with
// WWW-Authenticate, the console page, the echoed subprotocol.
import { SELF } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { ORIGIN, mint, upgrade } from "./helpers.ts"

const get = (path: string, init?: RequestInit) => SELF.fetch(`${ORIGIN}${path}`, init)
const operator = (vm: string) => mint({ tenant: "acme", vm, role: "operator" })

describe("routing", () => {
  it("answers /healthz", async () => {
    expect(await (await get("/healthz")).text()).toBe("ok")
  })

  it.each(["/nope", "/v1/vms", "/v1/vms/vm-1", "/v1/vms/vm-1/shell", "/v1/vms/a/b/console", "/v1/vms/bad%2Fname/console", "/v1/vms/%zz/status"])(
    "404s %s",
    async (path) => {
      expect((await get(path)).status).toBe(404)
    },
  )

  it.each([
    ["POST", "/healthz", "GET"],
    ["POST", "/v1/vms/vm-1/console", "GET"],
    ["PUT", "/v1/vms/vm-1/agent", "GET"],
    ["DELETE", "/v1/vms/vm-1/status", "GET"],
    ["GET", "/v1/vms/vm-1/policy", "PUT"],
    ["POST", "/console", "GET, HEAD"],
  ])("405s %s %s with Allow: %s", async (method, path, allow) => {
    const res = await get(path, { method })
    expect(res.status).toBe(405)
    expect(res.headers.get("Allow")).toBe(allow)
  })

  it("serves the console page at / and /console", async () => {
    for (const path of ["/", "/console"]) {
      const res = await get(path)
      expect(res.status).toBe(200)
      expect(res.headers.get("content-type")).toContain("text/html")
      await res.arrayBuffer()
    }
  })

  it("426s a WebSocket route without an upgrade", async () => {
    const res = await get("/v1/vms/vm-1/console", { headers: { Authorization: `Bearer ${await mint({ tenant: "acme", vm: "vm-1", role: "viewer" })}` } })
    expect(res.status).toBe(426)
  })
})

describe("upgrades", () => {
  it("accepts a browser-style token in Sec-WebSocket-Protocol and echoes only vdrelay.v1", async () => {
    const res = await upgrade("/v1/vms/vm-1/console", { token: await mint({ tenant: "acme", vm: "vm-1", role: "viewer" }) })
    expect(res.status).toBe(101)
    expect(res.headers.get("Sec-WebSocket-Protocol")).toBe("vdrelay.v1")
    res.webSocket!.accept()
    res.webSocket!.close(1000)
  })

  it("accepts Authorization: Bearer and then echoes no subprotocol", async () => {
    const res = await upgrade("/v1/vms/vm-1/agent", { token: await mint({ tenant: "acme", vm: "vm-1", role: "bridge" }), via: "bearer" })
    expect(res.status).toBe(101)
    expect(res.headers.get("Sec-WebSocket-Protocol")).toBeNull()
    res.webSocket!.accept()
    res.webSocket!.close(1000)
  })

  it("400s offered subprotocols without vdrelay.v1, and two tokens at once", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-1", role: "viewer" })
    expect((await upgrade("/v1/vms/vm-1/console", { protocols: [`vdrelay.token.${token}`] })).status).toBe(400)
    expect((await upgrade("/v1/vms/vm-1/console", { token, protocols: [`vdrelay.token.${token}`] })).status).toBe(400)
  })

  it("401s with WWW-Authenticate when there is no token", async () => {
    const res = await upgrade("/v1/vms/vm-1/console")
    expect(res.status).toBe(401)
    expect(res.headers.get("WWW-Authenticate")).toContain("Bearer")
  })
})

describe("operator API", () => {
  it("reports status to an operator", async () => {
    const res = await get("/v1/vms/vm-s/status", { headers: { Authorization: `Bearer ${await operator("vm-s")}` } })
    expect(res.status).toBe(200)
    const body = await res.json()
    expect(body).toMatchObject({ tenant: "acme", vm: "vm-s", agent: { bridge: false }, clients: { controller: 0, viewer: 0 } })
  })

  it("validates policy patches before any Durable Object is touched", async () => {
    const headers = { Authorization: `Bearer ${await operator("vm-p")}` }
    const put = (body: string) => get("/v1/vms/vm-p/policy", { method: "PUT", headers, body })
    expect((await put("not json")).status).toBe(400)
    expect((await put('{"copyPaste":"no"}')).status).toBe(400)
    expect((await put('{"rootShell":true}')).status).toBe(400)
    expect((await put('{"maxMessageBytes":-1}')).status).toBe(400)
    expect((await put(`{"copyPaste":false${" ".repeat(5000)}}`)).status).toBe(413)
    const ok = await put('{"copyPaste":false,"maxClipboardBytes":1024}')
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ copyPaste: false, maxClipboardBytes: 1024, fileTransfer: true })
  })
})
