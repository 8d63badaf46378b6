// Test data and host-side helpers shared by the VM tests.
import { randomBytes } from "node:crypto"
import { crc32, deflateSync } from "node:zlib"
import { Cap, MessageType as T } from "../../src/protocol/constants.ts"
import { buildCaps } from "../../src/protocol/caps.ts"
import { HostPeer, payload, u32At } from "../harness/host-peer.ts"

/** What spice-vdagent 0.22.1 announces (spec §11, §14). */
export const AGENT_CAPS = 0x00038de7

/** The caps spice-gtk 0.39 announces (spec §3). */
export const CLIENT_CAPS = buildCaps([
  Cap.MouseState, Cap.MonitorsConfig, Cap.Reply, Cap.DisplayConfig, Cap.ClipboardByDemand, Cap.ClipboardSelection,
  Cap.MonitorsConfigPosition, Cap.FileXferDetailedErrors, Cap.ClipboardNoReleaseOnRegrab, Cap.ClipboardGrabSerial,
])[0]!

/** Connects to the VM's agent chardev socket as the host (the bridge's side). */
export const connectAgent = (agentSocket: string): Promise<HostPeer> => HostPeer.connect(agentSocket)

/** Client ANNOUNCE(request=1) and the agent's ANNOUNCE(request=0) answer; returns the agent's caps word. */
export const handshake = async (p: HostPeer, timeoutMs = 15_000): Promise<number> => {
  await p.send(T.AnnounceCapabilities, payload.announce(1, CLIENT_CAPS))
  const reply = await p.expect(T.AnnounceCapabilities, { where: (m) => u32At(m.body, 0) === 0, timeoutMs })
  return u32At(reply.body, 4)
}

const chunk = (type: string, data: Uint8Array): Buffer => {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, "latin1")
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, "latin1"), data])) >>> 0, 0)
  return Buffer.concat([head, data, crc])
}

/** A valid RGB PNG of random pixels (so its bytes are unique per call). */
export const makePng = (width: number, height: number): Buffer => {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr.set([8, 2, 0, 0, 0], 8) // 8-bit RGB, no interlace
  const rows: Buffer[] = []
  for (let y = 0; y < height; y++) rows.push(Buffer.concat([Buffer.from([0]), randomBytes(width * 3)]))
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", new Uint8Array(0)),
  ])
}
