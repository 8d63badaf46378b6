// Every link ends through one path, exactly once: the link's Effect scope, whichever of webSocketClose,
// webSocketError, an actor-commanded close or a send failure comes first.
import { SELF } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { LINK_VERSION } from "../../src/link/types.ts"
import { LinkScopes } from "../../workers/link-scopes.ts"
import { ORIGIN, clientPeer, mint, upgrade } from "./helpers.ts"

const status = async (vm: string) =>
  (await (
    await SELF.fetch(`${ORIGIN}/v1/vms/${vm}/status`, { headers: { Authorization: `Bearer ${await mint({ tenant: "acme", vm, role: "operator" })}` } })
  ).json()) as { counters: Record<string, number>; edge: Record<string, number>; clients: Record<string, number> }

describe("LinkScopes", () => {
  it("runs a link's finalizer once, with the first cause, however often it is ended", () => {
    const scopes = new LinkScopes()
    const ws = {} as WebSocket
    const causes: string[] = []
    scopes.open(ws, (c) => causes.push(c))
    expect(scopes.end(ws, "protocol")).toBe(true)
    expect(scopes.end(ws, "closed")).toBe(false)
    expect(scopes.end(ws, "error")).toBe(false)
    expect(causes).toEqual(["protocol"])
    expect(scopes.isOpen(ws)).toBe(false)
  })
})

describe("in the Durable Object", () => {
  it("a client that closes is reported to the actor once", async () => {
    const peer = clientPeer(await upgrade("/v1/vms/vm-l1/console", { token: await mint({ tenant: "acme", vm: "vm-l1", role: "viewer" }) }))
    peer.send({ t: "hello", v: LINK_VERSION, client: "t", role: "viewer", caps: [] })
    await peer.next((f) => f.t === "welcome")
    peer.ws.close(1000, "bye")
    await peer.closed
    let s = await status("vm-l1")
    while (s.clients.viewer !== 0) s = await status("vm-l1")
    expect(s.edge["links.closed.closed"]).toBe(1)
    expect(s.counters["vdrelay_client_leaves_total{cause=closed}"]).toBe(1)
  })

  it("a client the relay closes (garbage after hello) is reported once, with the relay's cause", async () => {
    const peer = clientPeer(await upgrade("/v1/vms/vm-l2/console", { token: await mint({ tenant: "acme", vm: "vm-l2", role: "viewer" }) }))
    peer.send({ t: "hello", v: LINK_VERSION, client: "t", role: "viewer", caps: [] })
    await peer.next((f) => f.t === "welcome")
    peer.ws.send(new Uint8Array([0xc1]))
    expect((await peer.closed).code).toBe(1002)
    const s = await status("vm-l2")
    expect(s.edge["links.closed.protocol"]).toBe(1)
    expect(s.edge["links.closed.closed"]).toBeUndefined()
    expect(Object.entries(s.counters).filter(([k]) => k.startsWith("vdrelay_client_leaves_total"))).toEqual([
      ["vdrelay_client_leaves_total{cause=protocol}", 1],
    ])
  })
})
