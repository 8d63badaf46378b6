// Client link codecs (console ⇄ relay): one reader per frame of ClientToRelay and RelayToClient in types.ts, each
// checking every field's type, range and byte length; encoders are msgpackr over the typed frames.
import { decodeFrame, encodeFrame, version, type FrameReaders, type LinkDecoded } from "./codec.ts"
import { Fields } from "./fields.ts"
import {
  MAX_FRAME_DATA_BYTES,
  MAX_ORIGIN_LENGTH,
  type AgentState,
  type ClientToRelay,
  type LinkErrorCode,
  type NoticeCode,
  type Policy,
  type RelayToClient,
  type Role,
} from "./types.ts"

export const ROLES: ReadonlyArray<Role> = ["controller", "viewer"]
export const NOTICE_CODES: ReadonlyArray<NoticeCode> = [
  "dropped-by-policy",
  "dropped-by-disconnect",
  "dropped-by-role",
  "too-large",
  "invalid-message",
  "agent-not-connected",
  "role-changed",
  "slow-consumer",
  "resend",
]
export const LINK_ERROR_CODES: ReadonlyArray<LinkErrorCode> = ["protocol", "policy", "too-big", "internal", "replaced", "slow-consumer", "going-away", "auth"]

/** The first fragment of a message: data never exceeds the declared size, and a one-frame message carries all of it. */
const firstFragment = (f: Fields) => {
  const type = f.u32("type")
  const size = f.u32("size")
  const data = f.bin("data", MAX_FRAME_DATA_BYTES)
  const end = f.bool("end")
  if (data.byteLength > size) f.problem ??= "data: longer than size"
  else if (end && data.byteLength !== size) f.problem ??= "data: end of a message shorter than its size"
  return { type, size, data, end }
}

export const readPolicy = (f: Fields): Policy => ({
  copyPaste: f.bool("copyPaste"),
  fileTransfer: f.bool("fileTransfer"),
  maxClipboardBytes: f.u32("maxClipboardBytes"),
  maxMessageBytes: f.u32("maxMessageBytes"),
  viewersSeeClipboard: f.bool("viewersSeeClipboard"),
})

const readAgent = (f: Fields): AgentState => ({ connected: f.bool("connected"), caps: f.capsOrNull("caps") })

const clientReaders: FrameReaders<ClientToRelay> = {
  hello: (f) => {
    const resume = f.optional("resume", (n) => f.str(n, 256))
    const lastSeq = f.optional("lastSeq", (n) => f.uint(n))
    const origin = f.optional("origin", (n) => f.str(n, MAX_ORIGIN_LENGTH))
    const confirms = f.optional("confirms", (n) => f.bool(n))
    return {
      t: "hello",
      v: version(f),
      client: f.str("client", 256),
      role: f.oneOf("role", ROLES),
      caps: f.caps("caps"),
      ...(resume !== undefined ? { resume } : {}),
      ...(lastSeq !== undefined ? { lastSeq } : {}),
      ...(origin !== undefined ? { origin } : {}),
      ...(confirms === true ? { confirms: true } : {}),
    }
  },
  msg: (f) => ({ t: "msg", id: f.u32("id"), ...firstFragment(f), ...(f.optional("again", (n) => f.bool(n)) === true ? { again: true } : {}) }),
  more: (f) => ({ t: "more", id: f.u32("id"), data: f.bin("data", MAX_FRAME_DATA_BYTES), end: f.bool("end") }),
  abort: (f) => ({ t: "abort", id: f.u32("id") }),
  mouse: (f) => ({ t: "mouse", x: f.u32("x"), y: f.u32("y"), buttons: f.u32("buttons"), display: f.u32("display") }),
  credit: (f) => ({ t: "credit", bytes: f.uint("bytes") }),
  got: (f) => ({ t: "got", seq: f.uint("seq") }),
  control: () => ({ t: "control" }),
  ping: (f) => ({ t: "ping", n: f.uint("n") }),
}

const relayReaders: FrameReaders<RelayToClient> = {
  welcome: (f) => ({
    t: "welcome",
    v: version(f),
    session: f.str("session", 256),
    role: f.oneOf("role", ROLES),
    agent: f.object("agent", readAgent),
    policy: f.object("policy", readPolicy),
    credit: f.uint("credit"),
    resume: f.str("resume", 256),
    ...(f.optional("resumed", (n) => f.bool(n)) === true ? { resumed: true } : {}),
    ...(f.optional("confirms", (n) => f.bool(n)) === true ? { confirms: true } : {}),
  }),
  agent: (f) => ({ t: "agent", ...readAgent(f) }),
  msg: (f) => ({ t: "msg", seq: f.uint("seq"), ...firstFragment(f) }),
  more: (f) => ({ t: "more", seq: f.uint("seq"), data: f.bin("data", MAX_FRAME_DATA_BYTES), end: f.bool("end") }),
  abort: (f) => ({ t: "abort", seq: f.uint("seq"), reason: f.oneOf("reason", NOTICE_CODES) }),
  ack: (f) => ({ t: "ack", id: f.u32("id") }),
  credit: (f) => ({ t: "credit", bytes: f.uint("bytes") }),
  notice: (f) => {
    const id = f.optional("id", (n) => f.u32(n))
    const type = f.optional("type", (n) => f.u32(n))
    return {
      t: "notice",
      code: f.oneOf("code", NOTICE_CODES),
      ...(id !== undefined ? { id } : {}),
      ...(type !== undefined ? { type } : {}),
      detail: f.str("detail"),
    }
  },
  role: (f) => ({ t: "role", role: f.oneOf("role", ROLES) }),
  pong: (f) => ({ t: "pong", n: f.uint("n") }),
  error: (f) => ({ t: "error", code: f.oneOf("code", LINK_ERROR_CODES), detail: f.str("detail") }),
}

export const encodeClientToRelay = (frame: ClientToRelay): Uint8Array => encodeFrame(frame)
export const encodeRelayToClient = (frame: RelayToClient): Uint8Array => encodeFrame(frame)

export const decodeClientToRelay = (data: Uint8Array | ArrayBuffer, maxFrameBytes?: number): LinkDecoded<ClientToRelay> =>
  decodeFrame(data, clientReaders, maxFrameBytes)
export const decodeRelayToClient = (data: Uint8Array | ArrayBuffer, maxFrameBytes?: number): LinkDecoded<RelayToClient> =>
  decodeFrame(data, relayReaders, maxFrameBytes)
