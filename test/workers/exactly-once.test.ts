// Exactly once to the guest across Durable Object hibernation in the middle of a file transfer, in workerd: a console
// that names its messages (hello.origin) streams FILE_XFER_DATA without waiting, the object is evicted with its
// sockets kept, and the console resends whatever it is told to, as the SDK does. Every message is answered exactly
// once in the end, every write names its message, and the guest gets the file byte-exact, each block once, in order.
import { evictDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { LINK_VERSION } from "../../src/link/types.ts"
import { encodeChunkedMessage } from "../../src/protocol/chunker.ts"
import { MessageType, Port } from "../../src/protocol/constants.ts"
import { SPICE_VDAGENT_CAPS } from "../../src/protocol/known.ts"
import { FakeBridge } from "../harness/fake-bridge.ts"
import { bridgePeer, clientPeer, mint, stubFor, upgrade } from "./helpers.ts"

const u32 = (...w: number[]): Uint8Array => new Uint8Array(new Uint32Array(w).buffer)
const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) (out.set(p, at), (at += p.length))
  return out
}

describe("exactly once to the guest across hibernation", () => {
  for (const at of [3, 9]) {
    it(`hibernation after ${at} of 16 blocks: each block written once, in order, each id answered once`, async () => {
      const vm = `vm-once-${at}`
      const peer = bridgePeer(await upgrade(`/v1/vms/${vm}/agent`, { token: await mint({ tenant: "acme", vm, role: "bridge" }), via: "bearer" }))
      const bridge = new FakeBridge((f) => peer.send(f))
      peer.ws.addEventListener("message", () => {
        for (const f of peer.inbox.splice(0)) bridge.onFrame(f)
      })
      bridge.attach((f) => peer.send(f))
      bridge.agentWrites(encodeChunkedMessage(Port.Client, MessageType.AnnounceCapabilities, cat(u32(1), u32(SPICE_VDAGENT_CAPS))))
      const c = clientPeer(await upgrade(`/v1/vms/${vm}/console`, { token: await mint({ tenant: "acme", vm, role: "controller" }) }))
      c.send({ t: "hello", v: LINK_VERSION, client: "sdk", role: "controller", caps: [SPICE_VDAGENT_CAPS], origin: "0123456789abcdef0123456789abcdef" })
      await c.next((f) => f.t === "welcome")
      c.send({ t: "credit", bytes: 1 << 24 })

      const file = Uint8Array.from({ length: 16 * 4096 }, (_, i) => (Math.imul(i, 2654435761) >>> 24) ^ (i >>> 12))
      const messages = new Map<number, { type: number; payload: Uint8Array }>()
      messages.set(1, { type: MessageType.FileXferStart, payload: cat(u32(7), new TextEncoder().encode(`[vdagent-file-xfer]\nname=f\nsize=${file.length}\n\0`)) })
      for (let b = 0; b < 16; b++) messages.set(2 + b, { type: MessageType.FileXferData, payload: cat(u32(7, 4096, 0), file.subarray(b * 4096, (b + 1) * 4096)) })
      const send = (id: number): void => {
        const m = messages.get(id)!
        c.send({ t: "msg", id, type: m.type, size: m.payload.length, data: m.payload, end: true })
      }
      for (let id = 1; id <= 1 + at; id++) send(id)
      c.send({ t: "ping", n: 1 })
      await c.next((f) => f.t === "pong") // those frames were handled before the eviction
      await evictDurableObject(stubFor("acme", vm), { webSockets: "hibernate" })
      for (let id = 2 + at; id <= 17; id++) send(id)

      // Like the SDK: a `resend` sends the message again (same id); every id must end with exactly one final answer.
      const final = new Map<number, string[]>()
      while ([...messages.keys()].some((id) => !final.has(id))) {
        const f = await c.next((g) => g.t === "ack" || (g.t === "notice" && g.id !== undefined))
        const id = (f as { id: number }).id
        const answer = f.t === "ack" ? "ack" : (f as { code: string }).code
        if (answer === "resend") {
          send(id)
          continue
        }
        final.set(id, [...(final.get(id) ?? []), answer])
      }
      await bridge.sync()
      expect([...final.values()].every((a) => a.length === 1 && a[0] === "ack")).toBe(true)
      const data = bridge.guest.filter((g) => g.type === MessageType.FileXferData)
      expect(data).toHaveLength(16)
      expect(cat(...data.map((g) => g.payload.subarray(12)))).toEqual(file)
      const named = bridge.frames.filter((f) => f.t === "write" && f.origin !== undefined)
      expect(named.every((f) => f.t === "write" && f.origin === "0123456789abcdef0123456789abcdef")).toBe(true)
      expect(new Set(named.map((f) => f.t === "write" && f.id)).size).toBe(17)
    })
  }
})
