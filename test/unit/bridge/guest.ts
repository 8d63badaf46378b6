// Guest-bound test helpers: chunked messages as the relay sends them, write frames split at arbitrary offsets, and a
// walker over what reached the fake chardev.
import { encodeChunkedMessage } from "../../../src/protocol/chunker.ts"
import type { RelayConn } from "./fixtures.ts"

export const message = (port: number, type: number, payload: Uint8Array): Buffer => Buffer.from(encodeChunkedMessage(port, type, payload))

/** MOUSE_STATE (13 bytes: x, y, buttons, display) as SPICE sends it on the server port: 8 + 20 + 13 = 41 bytes. */
export const mouseState = (x: number, y: number): Buffer => {
  const p = Buffer.alloc(13)
  p.writeUInt32LE(x, 0)
  p.writeUInt32LE(y, 4)
  return message(2, 1, p)
}

/** Sends `wire` as write frames of `piece` bytes from `pos`; returns the position after it. */
export const sendWrites = (conn: RelayConn, epoch: number, pos: number, port: number, wire: Uint8Array, piece = 5000, end = true): number => {
  for (let at = 0; at < wire.length; at += piece) {
    const data = wire.subarray(at, Math.min(wire.length, at + piece))
    conn.send({ t: "write", epoch, pos: pos + at, port, data, end: end && at + piece >= wire.length })
  }
  return pos + wire.length
}

export interface WalkedChunk {
  readonly offset: number
  readonly port: number
  readonly size: number
}

/** The VDIChunks in a guest-bound byte stream (throws if it is not a clean sequence of chunks). */
export const walkChunks = (stream: Buffer): Array<WalkedChunk> => {
  const out: Array<WalkedChunk> = []
  let at = 0
  while (at < stream.length) {
    if (stream.length - at < 8) throw new Error(`torn chunk header at ${at}`)
    const port = stream.readUInt32LE(at)
    const size = stream.readUInt32LE(at + 4)
    if (size > 2048 || size === 0 || stream.length - at - 8 < size) throw new Error(`bad chunk at ${at}: port ${port} size ${size}`)
    out.push({ offset: at, port, size })
    at += 8 + size
  }
  return out
}

/** Reassembles the chunks of one port into its wire bytes (chunk headers included), to compare with what was sent. */
export const portStream = (stream: Buffer, port: number): Buffer =>
  Buffer.concat(walkChunks(stream).filter((c) => c.port === port).map((c) => stream.subarray(c.offset, c.offset + 8 + c.size)))
