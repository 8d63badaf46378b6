// Live migration through the Worker and the VmSession in workerd (docs/migration.md): the destination's `continues`
// hello is refused while the source's bridge holds the VM; after the source's handover it continues the same agent
// connection (same epoch, positions from the handover), and the console keeps its link and never sees the agent go.
import { evictDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { LINK_VERSION, type RelayToBridge, type RelayToClient } from "../../src/link/types.ts"
import { encodeChunkedMessage } from "../../src/protocol/chunker.ts"
import { MessageType, Port } from "../../src/protocol/constants.ts"
import { SPICE_VDAGENT_CAPS } from "../../src/protocol/known.ts"
import { bridgePeer, clientPeer, mint, receiveMessage, stubFor, upgrade, type BridgePeer } from "./helpers.ts"

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)))
const announce = encodeChunkedMessage(Port.Client, MessageType.AnnounceCapabilities, hex("01000000e78d0300"))
const grab = encodeChunkedMessage(Port.Client, MessageType.ClipboardGrab, hex("00000000" + "00000000" + "01000000"))

/** The VDAgentMessage type of a write that starts a message (after the 8-byte chunk header and the protocol). */
const typeOf = (data: Uint8Array): number => new DataView(data.buffer, data.byteOffset + 8).getUint32(4, true)

const bridgeLink = async (vm: string): Promise<BridgePeer> => bridgePeer(await upgrade(`/v1/vms/${vm}/agent`, { token: await mint({ tenant: "acme", vm, role: "bridge" }), via: "bearer" }))

describe("live migration", () => {
  it("the destination continues the source's agent connection after its handover; the console notices nothing", async () => {
    const vm = "vm-mig1"
    const source = await bridgeLink(vm)
    source.send({ t: "hello", v: LINK_VERSION, bridge: "host-a", epoch: 100, chardev: true, from: 0, wrote: 0, port: "open" })
    expect(await source.next((f) => f.t === "welcome")).toMatchObject({ epoch: 100, ack: 0 })
    source.send({ t: "data", epoch: 100, pos: 0, bytes: announce })
    const console_ = clientPeer(await upgrade(`/v1/vms/${vm}/console`, { token: await mint({ tenant: "acme", vm, role: "controller" }) }))
    console_.send({ t: "hello", v: LINK_VERSION, client: "c", role: "controller", caps: [SPICE_VDAGENT_CAPS] })
    expect(await console_.next((f) => f.t === "welcome")).toMatchObject({ agent: { connected: true } })
    console_.send({ t: "credit", bytes: 1 << 20 })

    // Too early: the source still holds the VM.
    const early = await bridgeLink(vm)
    early.send({ t: "hello", v: LINK_VERSION, bridge: "host-b", epoch: 200, chardev: true, from: 0, wrote: 0, port: "open", continues: true })
    expect((await early.closed).code).toBe(1001)

    source.send({ t: "handover", epoch: 100, end: announce.length })
    expect((await source.closed).code).toBe(1001)

    const destination = await bridgeLink(vm)
    destination.send({ t: "hello", v: LINK_VERSION, bridge: "host-b", epoch: 200, chardev: true, from: 0, wrote: 0, port: "open", continues: true })
    expect(await destination.next((f) => f.t === "welcome")).toMatchObject({ epoch: 100, agentBase: announce.length, guestBase: 0 })
    // The destination's bytes, on the relay's positions.
    destination.send({ t: "data", epoch: 100, pos: announce.length, bytes: grab })
    const m = await receiveMessage(console_)
    expect(m.type).toBe(MessageType.ClipboardGrab)
    const seen = console_.inbox.filter((f): f is Extract<RelayToClient, { t: "agent" }> => f.t === "agent")
    expect(seen.filter((f) => !f.connected)).toEqual([])
    // No caps request to the agent on the destination: it is the same agent connection.
    console_.send({ t: "msg", id: 1, type: MessageType.ClipboardGrab, size: 12, data: hex("000000000000000001000000"), end: true })
    const w = await destination.next((f) => f.t === "write")
    expect(w).toMatchObject({ epoch: 100, port: Port.Client })
    expect(new DataView(w.data.buffer, w.data.byteOffset + 8).getUint32(4, true)).toBe(MessageType.ClipboardGrab)
  })

  it("the object restarts between the source's handover and the destination's hello: still the same agent connection", async () => {
    const vm = "vm-mig2"
    const source = await bridgeLink(vm)
    source.send({ t: "hello", v: LINK_VERSION, bridge: "host-a", epoch: 300, chardev: true, from: 0, wrote: 0, port: "open" })
    expect(await source.next((f) => f.t === "welcome")).toMatchObject({ epoch: 300, ack: 0 })
    source.send({ t: "data", epoch: 300, pos: 0, bytes: announce })
    const console_ = clientPeer(await upgrade(`/v1/vms/${vm}/console`, { token: await mint({ tenant: "acme", vm, role: "controller" }) }))
    console_.send({ t: "hello", v: LINK_VERSION, client: "c", role: "controller", caps: [SPICE_VDAGENT_CAPS] })
    expect(await console_.next((f) => f.t === "welcome")).toMatchObject({ agent: { connected: true } })
    console_.send({ t: "credit", bytes: 1 << 20 })
    // A console message the source wrote and confirmed: the destination's guest positions start after it.
    console_.send({ t: "msg", id: 1, type: MessageType.ClipboardGrab, size: 12, data: hex("000000000000000001000000"), end: true })
    // (after the relay's own ANNOUNCE_CAPABILITIES to the agent)
    const w1 = await source.next((f): f is Extract<RelayToBridge, { t: "write" }> => f.t === "write" && typeOf(f.data) === MessageType.ClipboardGrab)
    const written = w1.pos + w1.data.length
    source.send({ t: "wrote", epoch: 300, pos: written })
    expect(await console_.next((f) => f.t === "ack")).toEqual({ t: "ack", id: 1 })
    source.send({ t: "handover", epoch: 300, end: announce.length })
    expect((await source.closed).code).toBe(1001)

    // The object is evicted (its memory gone; the console's socket hibernates and stays).
    await evictDurableObject(stubFor("acme", vm), { webSockets: "hibernate" })

    const destination = await bridgeLink(vm)
    destination.send({ t: "hello", v: LINK_VERSION, bridge: "host-b", epoch: 400, chardev: true, from: 0, wrote: 0, port: "open", continues: true })
    expect(await destination.next((f) => f.t === "welcome")).toMatchObject({ epoch: 300, agentBase: announce.length, guestBase: written })
    destination.send({ t: "data", epoch: 300, pos: announce.length, bytes: grab })
    expect((await receiveMessage(console_)).type).toBe(MessageType.ClipboardGrab)
    const seen = console_.inbox.filter((f): f is Extract<RelayToClient, { t: "agent" }> => f.t === "agent")
    expect(seen.filter((f) => !f.connected)).toEqual([])
    // The next console message continues the guest-bound positions after the source's.
    console_.send({ t: "msg", id: 2, type: MessageType.ClipboardGrab, size: 12, data: hex("000000000000000001000000"), end: true })
    expect(await destination.next((f) => f.t === "write")).toMatchObject({ epoch: 300, pos: written, port: Port.Client })
  })
})
