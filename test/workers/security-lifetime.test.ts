// Tokens on open links (issue 14): a link ends with close 4401 when its token expires (at exp + skew, the object's
// alarm), unless a fresh token came over the link; revocation by token id, by VM and by tenant closes the matching
// links before the operator's request is answered and refuses those tokens from then on; keys rotate (old and new key
// valid together, the old one then removed) without dropping a single link.
import { env } from "cloudflare:test"
import { afterEach, describe, expect, it } from "vitest"
import type { PrivateJwk } from "../../src/auth/jwk.ts"
import { encodePeerAuth } from "../../src/link/auth-codec.ts"
import { LINK_VERSION, type Role } from "../../src/link/types.ts"
import { alarmOf, mintEd, nowS, provenBridge, roundTrip, status, storedState } from "./auth-helpers.ts"
import { clientPeer, doCount, upgrade, ORIGIN, type ClientPeer } from "./helpers.ts"
import { TEST_JWKS, TEST_KEYS } from "./test-keys.ts"
import { SELF } from "cloudflare:test"

/** VDRELAY_CLOCK_SKEW_SECONDS of the workers project (vitest.config.ts). */
const SKEW = 2
const mutableEnv = env as { VDRELAY_JWKS?: string }
afterEach(() => {
  mutableEnv.VDRELAY_JWKS = TEST_JWKS
})

const joined = async (vm: string, token: string, role: Role = "viewer"): Promise<ClientPeer> => {
  const peer = clientPeer(await upgrade(`/v1/vms/${vm}/console`, { token }))
  peer.send({ t: "hello", v: LINK_VERSION, client: "t", role, caps: [] })
  await peer.next((f) => f.t === "welcome")
  return peer
}
const ping = async (peer: ClientPeer, n: number) => {
  peer.send({ t: "ping", n })
  await peer.next((f) => f.t === "pong" && f.n === n)
}
const refresh = (ws: WebSocket, token: string) => ws.send(encodePeerAuth({ t: "token", token }))
const post = async (path: string, token: string, body: unknown) =>
  SELF.fetch(`${ORIGIN}${path}`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify(body) })
const jtiOf = (token: string): string => JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).jti

describe("expiry on open links", () => {
  it("a console link ends with 4401 when its token expires; the object's alarm is set for exactly exp + skew", async () => {
    const t0 = nowS()
    const peer = await joined("vm-exp-1", await mintEd({ tenant: "acme", vm: "vm-exp-1", role: "viewer", now: t0, ttl: 1 }))
    const deadline = (t0 + 1 + SKEW) * 1000
    expect(await alarmOf("acme", "vm-exp-1")).toBeLessThanOrEqual(deadline)
    const closed = await peer.closed
    const lag = Date.now() - deadline
    expect(closed.code).toBe(4401)
    expect(lag).toBeGreaterThanOrEqual(0) // never before its time
    expect(peer.inbox).toContainEqual({ t: "error", code: "auth", detail: "token expired" })
    console.log(`measured: console link closed ${lag} ms after exp + skew`)
  })

  it("a bridge link ends with 4401 when its token expires", async () => {
    const t0 = nowS()
    const real = await provenBridge("acme", "vm-exp-2", "real-bridge", { now: t0, ttl: 1 })
    const closed = await real.peer.closed
    expect(closed.code).toBe(4401)
    expect(Date.now()).toBeGreaterThanOrEqual((t0 + 1 + SKEW) * 1000)
    expect(real.peer.inbox).toContainEqual({ t: "error", code: "auth", detail: "token expired" })
  })

  it("a fresh token over the link moves the link's end to the new token's expiry", async () => {
    const t0 = nowS()
    const peer = await joined("vm-exp-3", await mintEd({ tenant: "acme", vm: "vm-exp-3", role: "viewer", now: t0, ttl: 1 }))
    const fresh = await mintEd({ tenant: "acme", vm: "vm-exp-3", role: "viewer", ttl: 600 })
    refresh(peer.ws, fresh)
    await ping(peer, 1) // the refresh was handled before the ping
    expect(await alarmOf("acme", "vm-exp-3")).not.toBe((t0 + 1 + SKEW) * 1000)
    await new Promise((r) => setTimeout(r, (t0 + 1 + SKEW) * 1000 - Date.now() + 500)) // past the old token's end
    await ping(peer, 2)
    peer.ws.close(1000)
  })

  it.each([
    ["another VM", { vm: "vm-other" }],
    ["another role", { role: "controller" as const }],
    ["an expired token", { now: nowS() - 3600, ttl: 60 }],
  ])("a fresh token for %s is refused and ends the link (4401)", async (_what, change) => {
    const peer = await joined("vm-exp-4", await mintEd({ tenant: "acme", vm: "vm-exp-4", role: "viewer" }))
    refresh(peer.ws, await mintEd({ tenant: "acme", vm: "vm-exp-4", role: "viewer", ...change }))
    expect((await peer.closed).code).toBe(4401)
    expect(peer.inbox.find((f) => f.t === "error")).toMatchObject({ code: "auth", detail: expect.stringContaining("fresh token refused") })
  })
})

describe("revocation", () => {
  it("by token id: the link using it is closed before the answer; the token is refused from then on; others unharmed", async () => {
    const token = await mintEd({ tenant: "acme", vm: "vm-rev-1", role: "viewer" })
    const victim = await joined("vm-rev-1", token)
    const bystander = await joined("vm-rev-1", await mintEd({ tenant: "acme", vm: "vm-rev-1", role: "viewer" }))
    const res = await post("/v1/vms/vm-rev-1/revocations", await mintEd({ tenant: "acme", vm: "vm-rev-1", role: "operator" }), { jti: jtiOf(token) })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ jti: jtiOf(token), closed: 1 })
    expect(victim.inbox).toContainEqual({ t: "error", code: "auth", detail: "token revoked" })
    expect((await victim.closed).code).toBe(4401)
    const again = await upgrade("/v1/vms/vm-rev-1/console", { token })
    expect(again.status).toBe(401)
    expect(await again.text()).toContain("revoked")
    await ping(bystander, 1)
    bystander.ws.close(1000)
  })

  it("by VM: every link of tokens issued before the cut ends (consoles and bridge); tokens issued after it work", async () => {
    const a = await joined("vm-rev-2", await mintEd({ tenant: "acme", vm: "vm-rev-2", role: "viewer" }))
    const bridge = await provenBridge("acme", "vm-rev-2")
    const cut = nowS() + 1 // after every token above was issued
    const res = await post("/v1/vms/vm-rev-2/revocations", await mintEd({ tenant: "acme", vm: "vm-rev-2", role: "operator", now: cut, nbf: cut - 1 }), { issuedBefore: cut })
    expect(await res.json()).toMatchObject({ issuedBefore: cut, closed: 2 })
    expect((await a.closed).code).toBe(4401)
    expect((await bridge.peer.closed).code).toBe(4401)
    const later = await joined("vm-rev-2", await mintEd({ tenant: "acme", vm: "vm-rev-2", role: "viewer", now: cut, nbf: cut - 1 }))
    await ping(later, 1)
    later.ws.close(1000)
  })

  it("by tenant (admin token): links on every VM of the tenant end, other tenants' do not; old tokens are refused at the edge", async () => {
    const v1 = await joined("vm-t-1", await mintEd({ tenant: "rev-t", vm: "vm-t-1", role: "viewer" }))
    const v2 = await joined("vm-t-2", await mintEd({ tenant: "rev-t", vm: "vm-t-2", role: "viewer" }))
    const other = await joined("vm-t-1", await mintEd({ tenant: "other-t", vm: "vm-t-1", role: "viewer" }))
    const unused = await mintEd({ tenant: "rev-t", vm: "vm-t-never", role: "viewer" })
    const cut = nowS() + 1 // after every token above was issued
    const admin = await mintEd({ tenant: "rev-t", vm: "*", role: "admin", now: cut, nbf: cut - 1 })
    const res = await post("/v1/revocations", admin, { issuedBefore: cut })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ vms: 2, closed: 2 })
    expect((await v1.closed).code).toBe(4401)
    expect((await v2.closed).code).toBe(4401)
    await ping(other, 1)
    // A token issued before the cut, for a VM that never had a link: refused before any VmSession exists.
    const before = await doCount()
    const late = await upgrade("/v1/vms/vm-t-never/console", { token: unused })
    expect(late.status).toBe(401)
    expect(await doCount()).toBe(before)
    other.ws.close(1000)
  })

  it("a fresh token over a link is checked against tenant-wide revocations too (a VM first joined after the revocation)", async () => {
    const cut = nowS() + 1
    const admin = await mintEd({ tenant: "rev-late", vm: "*", role: "admin", now: cut, nbf: cut - 1 })
    expect((await post("/v1/revocations", admin, { issuedBefore: cut })).status).toBe(200)
    const peer = await joined("vm-late", await mintEd({ tenant: "rev-late", vm: "vm-late", role: "viewer", now: cut, nbf: cut - 1 }))
    refresh(peer.ws, await mintEd({ tenant: "rev-late", vm: "vm-late", role: "viewer" })) // issued before the cut
    expect((await peer.closed).code).toBe(4401)
    expect(peer.inbox.find((f) => f.t === "error")).toMatchObject({ code: "auth", detail: "fresh token refused: token revoked" })
  })

  it("who may revoke: operator of that VM (VM route), admin of that tenant (tenant route); nobody else", async () => {
    const body = { issuedBefore: 1 }
    const viewer = await mintEd({ tenant: "acme", vm: "vm-rev-3", role: "viewer" })
    const otherVm = await mintEd({ tenant: "acme", vm: "vm-rev-x", role: "operator" })
    const operator = await mintEd({ tenant: "acme", vm: "vm-rev-3", role: "operator" })
    const admin = await mintEd({ tenant: "acme", vm: "*", role: "admin" })
    expect((await post("/v1/vms/vm-rev-3/revocations", viewer, body)).status).toBe(403)
    expect((await post("/v1/vms/vm-rev-3/revocations", otherVm, body)).status).toBe(403)
    expect((await post("/v1/vms/vm-rev-3/revocations", admin, body)).status).toBe(403)
    expect((await post("/v1/revocations", operator, body)).status).toBe(403)
    expect((await upgrade("/v1/vms/vm-rev-3/console", { token: admin })).status).toBe(403)
    expect((await post("/v1/vms/vm-rev-3/revocations", operator, { jti: "short" })).status).toBe(400)
    expect((await post("/v1/vms/vm-rev-3/revocations", operator, { issuedBefore: 1, extra: true })).status).toBe(400)
    expect((await SELF.fetch(`${ORIGIN}/v1/revocations`, { headers: { Authorization: `Bearer ${admin}` } })).status).toBe(405)
  })
})

describe("key rotation", () => {
  it("keys rotate with zero dropped links: add the new key, move links to its tokens, remove the old key", async () => {
    const only = (...keys: ReadonlyArray<PrivateJwk>) =>
      JSON.stringify({ keys: keys.map(({ kty, crv, x, kid }) => ({ kty, crv, x, kid })) })
    // Before: only the current key.
    mutableEnv.VDRELAY_JWKS = only(TEST_KEYS.current)
    const vm = "vm-rot"
    const consoles = [await joined(vm, await mintEd({ tenant: "acme", vm, role: "viewer" })), await joined(vm, await mintEd({ tenant: "acme", vm, role: "controller" }), "controller")]
    const bridge = await provenBridge("acme", vm)
    const state = await storedState("acme", vm)
    const closedBefore = Object.entries((await status("acme", vm)).edge).filter(([k]) => k.startsWith("links.closed.")).reduce((n, [, v]) => n + v, 0)
    let dropped = 0
    for (const p of [...consoles, bridge.peer]) void p.closed.then(() => dropped++)
    // Overlap: both keys valid; the control plane signs with the next key from now on.
    mutableEnv.VDRELAY_JWKS = only(TEST_KEYS.current, TEST_KEYS.next)
    const viaNext = await joined(vm, await mintEd({ tenant: "acme", vm, role: "viewer" }, TEST_KEYS.next))
    refresh(consoles[0]!.ws, await mintEd({ tenant: "acme", vm, role: "viewer" }, TEST_KEYS.next))
    refresh(consoles[1]!.ws, await mintEd({ tenant: "acme", vm, role: "controller" }, TEST_KEYS.next))
    const { HOST_JKT } = await import("./auth-helpers.ts")
    bridge.ws.send(encodePeerAuth({ t: "token", token: await mintEd({ tenant: "acme", vm, role: "bridge", jkt: HOST_JKT }, TEST_KEYS.next) }))
    // After: the old key removed. Its tokens are refused; every link opened under it is still there and working.
    mutableEnv.VDRELAY_JWKS = only(TEST_KEYS.next)
    const old = await upgrade(`/v1/vms/${vm}/console`, { token: await mintEd({ tenant: "acme", vm, role: "viewer" }) })
    expect(old.status).toBe(401)
    for (const [i, p] of [...consoles, viaNext].entries()) await ping(p, 10 + i)
    await roundTrip(bridge.peer, 20)
    expect(dropped).toBe(0)
    const after = await status("acme", vm, TEST_KEYS.next)
    expect(after.edge["links.token.refreshed"]).toBe(3)
    const closedAfter = Object.entries(after.edge).filter(([k]) => k.startsWith("links.closed.")).reduce((n, [, v]) => n + v, 0)
    expect(closedAfter).toBe(closedBefore)
    expect(after.agent.bridgeName).toBe("real-bridge")
    expect(state).not.toBeNull()
    for (const p of [...consoles, viaNext]) p.ws.close(1000)
    bridge.ws.close(1000)
  })
})
