// The links' liveness ping: one fixed text frame each way. The relay registers the pair as its WebSocket auto-response
// (Durable Object `setWebSocketAutoResponse`), so the edge answers a ping without waking a hibernated object: an idle VM
// with a bridge and consoles attached costs no Durable Object request. Every other frame of both links is binary
// msgpack; these two strings are the only text frames either side accepts. The binary `ping`/`pong` frames of link
// version 1 are still answered (by the session, which wakes the object) for peers older than this change.

/** What a peer sends every heartbeat interval (text frame). */
export const LINK_PING = "vdrelay.ping"
/** The relay's answer, sent by the edge itself (text frame). */
export const LINK_PONG = "vdrelay.pong"
