// The security matrix (DESIGN.md invariant 4): every way to reach a VM without the right claims is refused with the
// right status or close code, and a refusal before the upgrade never creates a Durable Object.
import { SELF, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { encodeBase64url } from "../../src/auth/base64url.ts"
import { signToken } from "../../src/auth/token.ts"
import { LINK_VERSION } from "../../src/link/types.ts"
import { clientPeer, doCount, mint, stubFor, upgrade, KEY, ORIGIN } from "./helpers.ts"

const now = () => Math.floor(Date.now() / 1000)
const utf8 = new TextEncoder()

/** Expects `res` refused with `status` and no Durable Object created by the attempt. */
const refusedWithoutDo = async (attempt: () => Promise<Response>, status: number) => {
  const before = await doCount()
  const res = await attempt()
  expect(res.status).toBe(status)
  expect(res.webSocket).toBeNull()
  await res.text()
  expect(await doCount()).toBe(before)
}

describe("refused before any Durable Object is touched", () => {
  it("(control) an accepted upgrade on a new VM does create one", async () => {
    const before = await doCount()
    const res = await upgrade("/v1/vms/vm-new/console", { token: await mint({ tenant: "acme", vm: "vm-new", role: "viewer" }) })
    expect(res.status).toBe(101)
    res.webSocket!.accept()
    expect(await doCount()).toBe(before + 1)
    res.webSocket!.close(1000)
  })

  it("a token for another VM (403)", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-2", role: "controller" })
    await refusedWithoutDo(() => upgrade("/v1/vms/vm-1/console", { token }), 403)
  })

  it.each([
    ["viewer", "/v1/vms/vm-1/agent"],
    ["controller", "/v1/vms/vm-1/agent"],
    ["operator", "/v1/vms/vm-1/agent"],
    ["bridge", "/v1/vms/vm-1/console"],
    ["operator", "/v1/vms/vm-1/console"],
  ] as const)("a %s token on %s (403)", async (role, path) => {
    const token = await mint({ tenant: "acme", vm: "vm-1", role })
    await refusedWithoutDo(() => upgrade(path, { token }), 403)
  })

  it("a client or bridge token on the operator API (403)", async () => {
    for (const role of ["controller", "bridge"] as const) {
      const token = await mint({ tenant: "acme", vm: "vm-1", role })
      await refusedWithoutDo(() => SELF.fetch(`${ORIGIN}/v1/vms/vm-1/status`, { headers: { Authorization: `Bearer ${token}` } }), 403)
    }
  })

  it("an expired token (401)", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-1", role: "viewer", now: now() - 3600, ttl: 60 })
    await refusedWithoutDo(() => upgrade("/v1/vms/vm-1/console", { token }), 401)
  })

  it("a token not valid yet (401)", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-1", role: "viewer", nbf: now() + 3600, ttl: 7200 })
    await refusedWithoutDo(() => upgrade("/v1/vms/vm-1/console", { token }), 401)
  })

  it("a forged signature (401)", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-1", role: "controller" }, "another-key-that-is-long-enough-0123456789")
    await refusedWithoutDo(() => upgrade("/v1/vms/vm-1/console", { token }), 401)
  })

  it("alg none (401)", async () => {
    const claims = { tenant: "acme", vm: "vm-1", role: "controller", iat: now(), nbf: now(), exp: now() + 60, jti: "none-none-none" }
    const seg = (v: unknown) => encodeBase64url(utf8.encode(JSON.stringify(v)))
    const token = `${seg({ alg: "none", typ: "JWT" })}.${seg(claims)}.`
    await refusedWithoutDo(() => upgrade("/v1/vms/vm-1/console", { token, via: "bearer" }), 401)
    const resigned = (await signToken(KEY, claims as never)).split(".")
    await refusedWithoutDo(() => upgrade("/v1/vms/vm-1/console", { token: `${seg({ alg: "none" })}.${resigned[1]}.${resigned[2]}` }), 401)
  })

  it("a bad Origin (403), while the relay's own origin is allowed", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-o", role: "viewer" })
    await refusedWithoutDo(() => upgrade("/v1/vms/vm-o/console", { token, origin: "https://evil.example" }), 403)
    const ok = await upgrade("/v1/vms/vm-o/console", { token, origin: ORIGIN })
    expect(ok.status).toBe(101)
    ok.webSocket!.accept()
    ok.webSocket!.close(1000)
  })
})

describe("tenants", () => {
  it("a token of another tenant for the same VM name reaches only its own tenant's VM", async () => {
    const acme = await upgrade("/v1/vms/vm-t/console", { token: await mint({ tenant: "acme", vm: "vm-t", role: "viewer" }) })
    expect(acme.status).toBe(101)
    acme.webSocket!.accept()
    const statusAs = async (tenant: string) => {
      const token = await mint({ tenant, vm: "vm-t", role: "operator" })
      return (await SELF.fetch(`${ORIGIN}/v1/vms/vm-t/status`, { headers: { Authorization: `Bearer ${token}` } })).json()
    }
    expect(await statusAs("acme")).toMatchObject({ tenant: "acme", clients: { joining: 1 } })
    expect(await statusAs("globex")).toMatchObject({ tenant: "globex", clients: { joining: 0 } })
    expect(stubFor("acme", "vm-t").id.equals(stubFor("globex", "vm-t").id)).toBe(false)
    acme.webSocket!.close(1000)
  })
})

describe("refused by the Durable Object", () => {
  it("a replayed single-use token (401), for as long as it would verify", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-once", role: "viewer", singleUse: true })
    const first = await upgrade("/v1/vms/vm-once/console", { token })
    expect(first.status).toBe(101)
    first.webSocket!.accept()
    const count = await doCount()
    const again = await upgrade("/v1/vms/vm-once/console", { token })
    expect(again.status).toBe(401)
    expect(await again.text()).toContain("already used")
    expect(await doCount()).toBe(count)
    first.webSocket!.close(1000)
  })

  it("a viewer token asking for the controller role: closed with 1008", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-v", role: "viewer" })
    const peer = clientPeer(await upgrade("/v1/vms/vm-v/console", { token }))
    peer.send({ t: "hello", v: LINK_VERSION, client: "test", role: "controller", caps: [] })
    expect(await peer.next()).toMatchObject({ t: "error", code: "policy" })
    expect((await peer.closed).code).toBe(1008)
  })

  it("a link that never says hello: closed with 1008 when a link arrives after the 30 s deadline", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-silent", role: "viewer" })
    const silent = clientPeer(await upgrade("/v1/vms/vm-silent/console", { token }))
    const stub = stubFor("acme", "vm-silent")
    // Backdate its handshake start (as if 30 s had passed), then let the object hibernate and rebuild from attachments.
    await runInDurableObject(stub, (_instance, state) => {
      for (const ws of state.getWebSockets()) ws.serializeAttachment({ ...ws.deserializeAttachment(), since: 0 })
    })
    await evictDurableObject(stub, { webSockets: "hibernate" })
    const next = clientPeer(await upgrade("/v1/vms/vm-silent/console", { token }))
    expect(await silent.next()).toMatchObject({ t: "error", code: "policy" })
    expect((await silent.closed).code).toBe(1008)
    next.send({ t: "hello", v: LINK_VERSION, client: "test", role: "viewer", caps: [] })
    expect(await next.next()).toMatchObject({ t: "welcome" })
  })

  it("a frame before hello: closed with 1002; an oversized frame: 1009", async () => {
    const token = await mint({ tenant: "acme", vm: "vm-v", role: "controller" })
    const peer = clientPeer(await upgrade("/v1/vms/vm-v/console", { token }))
    peer.send({ t: "ping", n: 1 })
    expect((await peer.closed).code).toBe(1002)
    const big = clientPeer(await upgrade("/v1/vms/vm-v/console", { token }))
    big.ws.send(new Uint8Array(1024 * 1024 + 1))
    expect((await big.closed).code).toBe(1009)
    const text = clientPeer(await upgrade("/v1/vms/vm-v/console", { token }))
    text.ws.send("hello")
    expect((await text.closed).code).toBe(1002)
  })
})
