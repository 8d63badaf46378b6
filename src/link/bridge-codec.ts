// Bridge link codecs (host bridge ⇄ relay): one reader per frame of BridgeToRelay and RelayToBridge in types.ts, each
// checking every field's type, range and byte length; encoders are msgpackr over the typed frames.
import { LINK_ERROR_CODES } from "./client-codec.ts"
import { decodeFrame, encodeFrame, version, type FrameReaders, type LinkDecoded } from "./codec.ts"
import { MAX_FRAME_DATA_BYTES, MAX_ORIGIN_LENGTH, type BridgeToRelay, type PortLevel, type RelayToBridge } from "./types.ts"

export const PORT_LEVELS: ReadonlyArray<PortLevel> = ["open", "closed", "unknown"]

const bridgeReaders: FrameReaders<BridgeToRelay> = {
  hello: (f) => {
    const continues = f.optional("continues", (n) => f.bool(n))
    return {
      t: "hello",
      v: version(f),
      bridge: f.str("bridge", 256),
      epoch: f.uint("epoch"),
      chardev: f.bool("chardev"),
      from: f.uint("from"),
      wrote: f.uint("wrote"),
      port: f.oneOf("port", PORT_LEVELS),
      ...(continues === true ? { continues } : {}),
    }
  },
  handover: (f) => {
    const torn = f.optional("torn", (n) => f.bool(n))
    return { t: "handover", epoch: f.uint("epoch"), end: f.uint("end"), ...(torn === true ? { torn } : {}) }
  },
  data: (f) => ({ t: "data", epoch: f.uint("epoch"), pos: f.uint("pos"), bytes: f.bin("bytes", MAX_FRAME_DATA_BYTES) }),
  chardev: (f) => ({ t: "chardev", epoch: f.uint("epoch"), up: f.bool("up") }),
  port: (f) => ({ t: "port", epoch: f.uint("epoch"), open: f.bool("open") }),
  wrote: (f) => {
    const server = f.optional("server", (n) => f.uint(n))
    return { t: "wrote", epoch: f.uint("epoch"), pos: f.uint("pos"), ...(server !== undefined ? { server } : {}) }
  },
  ping: (f) => ({ t: "ping", n: f.uint("n") }),
}

const relayReaders: FrameReaders<RelayToBridge> = {
  welcome: (f) => {
    const agentBase = f.optional("agentBase", (n) => f.uint(n))
    const guestBase = f.optional("guestBase", (n) => f.uint(n))
    if ((agentBase === undefined) !== (guestBase === undefined)) f.problem ??= "agentBase, guestBase: one without the other"
    const base = agentBase !== undefined && guestBase !== undefined ? { agentBase, guestBase } : {}
    return { t: "welcome", v: version(f), epoch: f.uint("epoch"), ack: f.uint("ack"), window: f.uint("window"), ...base }
  },
  ack: (f) => ({ t: "ack", epoch: f.uint("epoch"), pos: f.uint("pos") }),
  write: (f) => {
    const origin = f.optional("origin", (n) => f.str(n, MAX_ORIGIN_LENGTH))
    const id = f.optional("id", (n) => f.u32(n))
    if ((origin === undefined) !== (id === undefined)) f.problem ??= "origin, id: one without the other"
    return {
      t: "write",
      epoch: f.uint("epoch"),
      pos: f.uint("pos"),
      port: f.u32("port"),
      data: f.bin("data", MAX_FRAME_DATA_BYTES),
      end: f.bool("end"),
      ...(origin !== undefined && id !== undefined ? { origin, id } : {}),
    }
  },
  abort: (f) => ({ t: "abort", epoch: f.uint("epoch"), pos: f.uint("pos"), port: f.u32("port") }),
  rewind: (f) => ({ t: "rewind", epoch: f.uint("epoch"), pos: f.uint("pos") }),
  pong: (f) => ({ t: "pong", n: f.uint("n") }),
  error: (f) => ({ t: "error", code: f.oneOf("code", LINK_ERROR_CODES), detail: f.str("detail") }),
}

export const encodeBridgeToRelay = (frame: BridgeToRelay): Uint8Array => encodeFrame(frame)
export const encodeRelayToBridge = (frame: RelayToBridge): Uint8Array => encodeFrame(frame)

export const decodeBridgeToRelay = (data: Uint8Array | ArrayBuffer, maxFrameBytes?: number): LinkDecoded<BridgeToRelay> =>
  decodeFrame(data, bridgeReaders, maxFrameBytes)
export const decodeRelayToBridge = (data: Uint8Array | ArrayBuffer, maxFrameBytes?: number): LinkDecoded<RelayToBridge> =>
  decodeFrame(data, relayReaders, maxFrameBytes)
