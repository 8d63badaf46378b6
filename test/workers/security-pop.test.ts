// Proof of possession for bridges (issue 14): a bridge token names its host's key (cnf.jkt) and the relay's first frame
// on the link is a challenge only that key can answer. A stolen token without the key is refused with close 4401
// before the live bridge is touched: no close 4000 for it, no change to the VM's stored session, a counter and an audit
// line. A replayed answer is refused too.
import { afterEach, describe, expect, it, vi } from "vitest"
import { TEST_KEYS } from "./test-keys.ts"
import { bridgeHello, bridgeToken, challenged, mintEd, proofBy, provenBridge, roundTrip, sendAuth, status, storedState } from "./auth-helpers.ts"
import { doCount, upgrade } from "./helpers.ts"

afterEach(() => vi.restoreAllMocks())

/** Runs a thief's attempt against a VM with a live bridge and checks that nothing of the live bridge changed. */
const thiefRefused = async (vm: string, attempt: (thief: Awaited<ReturnType<typeof challenged>>, real: Awaited<ReturnType<typeof provenBridge>>) => Promise<void>) => {
  const real = await provenBridge("acme", vm)
  await roundTrip(real.peer, 1)
  const before = await storedState("acme", vm)
  const refusedBefore = (await status("acme", vm)).edge["links.refused.proof"] ?? 0
  const warn = vi.spyOn(console, "warn")
  const thief = await challenged(vm, await bridgeToken("acme", vm))
  await attempt(thief, real)
  expect(await thief.peer.next()).toMatchObject({ t: "error", code: "auth" })
  expect((await thief.peer.closed).code).toBe(4401)
  // The live bridge: still the VM's bridge, still answering, never told it was replaced; the session unchanged.
  await roundTrip(real.peer, 2)
  expect(real.peer.inbox.filter((f) => f.t === "error")).toEqual([])
  const s = await status("acme", vm)
  expect(s.agent.bridgeName).toBe("real-bridge")
  expect(s.edge["links.refused.proof"]).toBe(refusedBefore + 1)
  expect(await storedState("acme", vm)).toBe(before)
  const audit = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('"event":"proof-refused"'))
  expect(audit).toHaveLength(1)
  expect(JSON.parse(audit[0]!)).toMatchObject({ audit: true, tenant: "acme", vm, kid: TEST_KEYS.current.kid })
  real.ws.close(1000)
}

describe("a stolen bridge token without its host key", () => {
  it("cannot say hello without answering the challenge (4401; live bridge untouched)", async () => {
    await thiefRefused("vm-pop-1", async (thief) => thief.peer.send(bridgeHello("thief")))
  })

  it("cannot answer with another key, even with a valid signature of that key (4401; live bridge untouched)", async () => {
    await thiefRefused("vm-pop-2", async (thief) => {
      sendAuth(thief.ws, await proofBy(TEST_KEYS.otherHost, "vm-pop-2", thief.nonce))
      thief.peer.send(bridgeHello("thief"))
    })
  })

  it("cannot replay the real bridge's answer to another challenge (4401; live bridge untouched)", async () => {
    await thiefRefused("vm-pop-3", async (thief, real) => {
      expect(thief.nonce).not.toBe(real.nonce)
      sendAuth(thief.ws, real.proof)
      thief.peer.send(bridgeHello("thief"))
    })
  })

  it("cannot use the host's public key with a forged signature (4401; live bridge untouched)", async () => {
    await thiefRefused("vm-pop-4", async (thief) => {
      sendAuth(thief.ws, { t: "proof", key: TEST_KEYS.host.x, sig: new Uint8Array(64) })
    })
  })
})

describe("bridge tokens and host keys", () => {
  it("(control) the holder of the host key does take the VM over from a previous bridge (4000 for the old one)", async () => {
    const first = await provenBridge("acme", "vm-pop-5", "first")
    const second = await provenBridge("acme", "vm-pop-5", "second")
    expect(await first.peer.next((f) => f.t === "error")).toMatchObject({ t: "error", code: "replaced" })
    expect((await first.peer.closed).code).toBe(4000)
    expect((await status("acme", "vm-pop-5")).agent.bridgeName).toBe("second")
    second.ws.close(1000)
  })

  it("a frame held while the proof is checked reaches the session after it, in order", async () => {
    const c = await challenged("vm-pop-6", await bridgeToken("acme", "vm-pop-6"))
    sendAuth(c.ws, await proofBy(TEST_KEYS.host, "vm-pop-6", c.nonce))
    c.peer.send(bridgeHello("pipelined"))
    c.peer.send({ t: "ping", n: 7 })
    expect(await c.peer.next()).toMatchObject({ t: "welcome" })
    expect(await c.peer.next((f) => f.t === "pong")).toMatchObject({ n: 7 })
    c.ws.close(1000)
  })

  it("a second proof on a proven link is refused like any unexpected frame", async () => {
    const real = await provenBridge("acme", "vm-pop-7")
    sendAuth(real.ws, real.proof)
    expect(await real.peer.next((f) => f.t === "error")).toBeDefined()
    expect((await real.peer.closed).code).not.toBe(1000)
  })

  it("an EdDSA bridge token without cnf is refused at the edge (401) before any Durable Object exists", async () => {
    const before = await doCount()
    const res = await upgrade("/v1/vms/vm-pop-8/agent", { token: await mintEd({ tenant: "acme", vm: "vm-pop-8", role: "bridge" }), via: "bearer" })
    expect(res.status).toBe(401)
    expect(await res.text()).toContain("host key")
    expect(await doCount()).toBe(before)
  })

  it("a challenge is only sent where the token names a host key (development HS256 bridge tokens)", async () => {
    // helpers' mint() signs HS256: the dev stacks' bare bridge tokens keep working without a host key.
    const { mint, bridgePeer } = await import("./helpers.ts")
    const peer = bridgePeer(await upgrade("/v1/vms/vm-pop-9/agent", { token: await mint({ tenant: "acme", vm: "vm-pop-9", role: "bridge" }), via: "bearer" }))
    peer.send(bridgeHello("dev"))
    expect(await peer.next()).toMatchObject({ t: "welcome" })
    peer.ws.close(1000)
  })
})
