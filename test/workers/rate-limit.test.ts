// Rate limits at the edge (docs/security.md): new links per VM, and frames per link. A flood from one console closes
// that console (1008) and leaves the VM's other links and other VMs alone; a join storm is refused with 429.
import { env } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { LINK_VERSION } from "../../src/link/types.ts"
import { BRIDGE_JOINS, CONSOLE_JOINS, LINK_FRAMES, linkFramesSpec, TokenBucket } from "../../workers/rate-limit.ts"
import { bridgePeer, clientPeer, mint, upgrade } from "./helpers.ts"

describe("token bucket", () => {
  it("allows a burst, then the refill rate, and says when to retry", () => {
    const b = new TokenBucket({ burst: 3, perSecond: 2 }, 0)
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false])
    expect(b.retryAfter()).toBe(1)
    expect(b.take(499)).toBe(false)
    expect(b.take(500)).toBe(true)
    expect(b.take(10_000)).toBe(true)
  })
})

describe("joins per VM", () => {
  it("refuses console links beyond the burst with 429 and Retry-After, while the bridge and other VMs still join", async () => {
    const token = await mint({ tenant: "rl", vm: "vm-joins", role: "viewer" })
    const statuses: number[] = []
    for (let i = 0; i < CONSOLE_JOINS.burst + 5; i++) {
      const res = await upgrade("/v1/vms/vm-joins/console", { token })
      statuses.push(res.status)
      if (res.status === 101) {
        res.webSocket!.accept()
        res.webSocket!.close(1000)
      } else {
        expect(res.headers.get("Retry-After")).toMatch(/^\d+$/)
        await res.text()
      }
    }
    expect(statuses.filter((s) => s === 101).length).toBeLessThanOrEqual(CONSOLE_JOINS.burst + 1)
    expect(statuses.slice(-3)).toEqual([429, 429, 429])
    const bridge = await upgrade("/v1/vms/vm-joins/agent", { token: await mint({ tenant: "rl", vm: "vm-joins", role: "bridge" }), via: "bearer" })
    expect(bridge.status).toBe(101)
    bridge.webSocket!.accept()
    bridge.webSocket!.close(1000)
    const other = await upgrade("/v1/vms/vm-other/console", { token: await mint({ tenant: "rl", vm: "vm-other", role: "viewer" }) })
    expect(other.status).toBe(101)
    other.webSocket!.accept()
    other.webSocket!.close(1000)
    expect(BRIDGE_JOINS.burst).toBeGreaterThan(1)
  })
})

describe("frames per link", () => {
  // This project sets a small bucket (vitest.config.ts, workers-limits), so a flood of 5 × burst trips it unless the
  // object takes longer than (4 × burst) / perSecond seconds to handle it.
  const spec = linkFramesSpec(env.VDRELAY_LINK_FRAMES)

  it("reads its bucket from VDRELAY_LINK_FRAMES, the default when unset or malformed", () => {
    expect(env.VDRELAY_LINK_FRAMES).toBeDefined()
    expect(spec).not.toEqual(LINK_FRAMES)
    expect(linkFramesSpec("400/20")).toEqual({ burst: 400, perSecond: 20 })
    expect(linkFramesSpec(undefined)).toEqual(LINK_FRAMES)
    expect(linkFramesSpec("0/5")).toEqual(LINK_FRAMES)
    expect(linkFramesSpec("fast")).toEqual(LINK_FRAMES)
  })

  it("closes a console that floods frames with 1008, and the other console of the VM carries on", async () => {
    const flooder = clientPeer(await upgrade("/v1/vms/vm-flood/console", { token: await mint({ tenant: "rl", vm: "vm-flood", role: "viewer" }) }))
    const calm = clientPeer(await upgrade("/v1/vms/vm-flood/console", { token: await mint({ tenant: "rl", vm: "vm-flood", role: "viewer" }) }))
    for (const p of [flooder, calm]) {
      p.send({ t: "hello", v: LINK_VERSION, client: "rl", role: "viewer", caps: [] })
      await p.next((f) => f.t === "welcome")
    }
    for (let n = 0; n < spec.burst * 5; n++) flooder.send({ t: "ping", n })
    const closed = await flooder.closed
    expect(closed.code).toBe(1008)
    expect(flooder.inbox.some((f) => f.t === "error" && f.code === "policy")).toBe(true)
    calm.send({ t: "ping", n: 7 })
    expect(await calm.next((f) => f.t === "pong")).toMatchObject({ t: "pong", n: 7 })
    calm.ws.close(1000)
  })

  it("applies to the bridge link too", async () => {
    const bridge = bridgePeer(await upgrade("/v1/vms/vm-flood-b/agent", { token: await mint({ tenant: "rl", vm: "vm-flood-b", role: "bridge" }), via: "bearer" }))
    bridge.send({ t: "hello", v: LINK_VERSION, bridge: "rl", epoch: 1, chardev: false, from: 0, wrote: 0, port: "unknown" })
    await bridge.next((f) => f.t === "welcome")
    for (let n = 0; n < spec.burst * 5; n++) bridge.send({ t: "ping", n })
    expect((await bridge.closed).code).toBe(1008)
  })
})
