// An idle VM costs the Durable Object nothing: the links' heartbeat (a fixed text frame) is answered by the edge's
// WebSocket auto-response, also while the object hibernates, so neither a ping nor its answer runs or wakes the object.
import { SELF, evictDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { decodeRelayToBridge, encodeBridgeToRelay } from "../../src/link/bridge-codec.ts"
import { decodeRelayToClient, encodeClientToRelay } from "../../src/link/client-codec.ts"
import { LINK_PING, LINK_PONG } from "../../src/link/heartbeat.ts"
import { LINK_VERSION } from "../../src/link/types.ts"
import { ORIGIN, mint, stubFor, upgrade } from "./helpers.ts"

const status = async (vm: string) =>
  (await (
    await SELF.fetch(`${ORIGIN}/v1/vms/${vm}/status`, { headers: { Authorization: `Bearer ${await mint({ tenant: "acme", vm, role: "operator" })}` } })
  ).json()) as { edge: Record<string, number>; agent: { bridge: boolean; bridgePing: string | null }; clients: Record<string, number> }

/** A raw socket that keeps text frames and decoded binary frames apart. */
const open = async (path: string, token: string, decode: (b: ArrayBuffer) => { _tag: string; value?: { t: string } }) => {
  const ws = (await upgrade(path, { token })).webSocket!
  ws.binaryType = "arraybuffer"
  ws.accept()
  const texts: string[] = []
  const frames: string[] = []
  let wake: (() => void) | undefined
  ws.addEventListener("message", (e) => {
    if (typeof e.data === "string") texts.push(e.data)
    else frames.push(decode(e.data as ArrayBuffer).value?.t ?? "undecodable")
    wake?.()
  })
  const until = async (pred: () => boolean) => {
    while (!pred()) await new Promise<void>((r) => (wake = r))
  }
  return { ws, texts, frames, until }
}

describe("heartbeats", () => {
  it("a bridge's and a console's pings are answered while the object hibernates, without waking it", async () => {
    const vm = "vm-hb1"
    const bridge = await open(`/v1/vms/${vm}/agent`, await mint({ tenant: "acme", vm, role: "bridge" }), (b) => decodeRelayToBridge(b))
    bridge.ws.send(encodeBridgeToRelay({ t: "hello", v: LINK_VERSION, bridge: "hb", epoch: 1, chardev: false, from: 0, wrote: 0, port: "unknown" }))
    await bridge.until(() => bridge.frames.includes("welcome"))
    const console_ = await open(`/v1/vms/${vm}/console`, await mint({ tenant: "acme", vm, role: "controller" }), (b) => decodeRelayToClient(b))
    console_.ws.send(encodeClientToRelay({ t: "hello", v: LINK_VERSION, client: "hb", role: "controller", caps: [] }))
    await console_.until(() => console_.frames.includes("welcome"))

    const before = await status(vm) // flushes the counters, so the eviction loses none of them
    await evictDurableObject(stubFor("acme", vm), { webSockets: "hibernate" })
    for (let i = 0; i < 5; i++) {
      bridge.ws.send(LINK_PING)
      console_.ws.send(LINK_PING)
      await bridge.until(() => bridge.texts.length > i)
      await console_.until(() => console_.texts.length > i)
    }
    expect(bridge.texts).toEqual(Array(5).fill(LINK_PONG))
    expect(console_.texts).toEqual(Array(5).fill(LINK_PONG))

    const after = await status(vm) // this request wakes the object once, and only this one
    expect(after.agent.bridge).toBe(true)
    expect(before.agent.bridgePing).toBeNull()
    expect(after.agent.bridgePing).not.toBeNull() // the object knows the bridge is alive without having seen its pings
    expect(after.clients.controller).toBe(1)
    expect(after.edge["object.starts"]).toBe((before.edge["object.starts"] ?? 0) + 1)
    expect(after.edge["pings.in-object"]).toBeUndefined()
    expect(after.edge["frames.in.bridge"]).toBe(before.edge["frames.in.bridge"])
    expect(after.edge["frames.in.client"]).toBe(before.edge["frames.in.client"])
  })

  it("a binary ping (a peer older than the text heartbeat) is still answered by the session", async () => {
    const vm = "vm-hb2"
    const c = await open(`/v1/vms/${vm}/console`, await mint({ tenant: "acme", vm, role: "viewer" }), (b) => decodeRelayToClient(b))
    c.ws.send(encodeClientToRelay({ t: "hello", v: LINK_VERSION, client: "old", role: "viewer", caps: [] }))
    await c.until(() => c.frames.includes("welcome"))
    c.ws.send(encodeClientToRelay({ t: "ping", n: 3 }))
    await c.until(() => c.frames.includes("pong"))
    expect(c.texts).toEqual([])
  })
})
