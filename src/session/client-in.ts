// Client → agent: `msg`/`more`/`abort` reassembly with checks before anything reaches the agent. Small messages are
// stored whole and validated, then written; a large CLIPBOARD is streamed to the bridge, which writes only whole
// messages to the chardev and drops one that ends in `abort`. Every refused message is answered with a notice.
import type { ClientToRelay, NoticeCode } from "../link/types.ts"
import { Cap, FileXferResult, MessageType, Port } from "../protocol/constants.ts"
import { hasCap } from "../protocol/caps.ts"
import { encodeFileXferStatus } from "../protocol/codec-file-xfer.ts"
import { decodeAnnounceCapabilities } from "../protocol/codec-misc.ts"
import { chunkedSize } from "../protocol/chunker.ts"
import { u32At } from "../protocol/wire.ts"
import type { Answer, ClientSide, SessionState } from "./state.ts"
import { notice, remember } from "./answers.ts"
import { enqueue, flush as flushOf } from "./client-queue.ts"
import { closeClient, takeControl } from "./clients.ts"
import { returnCredit } from "./credit.ts"
import { metric } from "./emit.ts"
import { sendMouse, streamAbort, streamPush, streamStart, writeWhole } from "./guest-out.ts"
import { fitsHeld } from "./held.ts"
import { dropInbound } from "./inbound.ts"
import { agentTakesMouse, reachable } from "./reach.ts"
import { allocSeq } from "./seq.ts"
import { checkHeader, checkPayload, STREAMED_TYPE, type Refusal } from "./validate.ts"
import { xferEnded, xferStarted } from "./xfers.ts"
import { confirmed } from "./confirms.ts"

type Frame<T extends ClientToRelay["t"]> = Extract<ClientToRelay, { t: T }>

/** A client broke the link protocol: it is closed (protocol), nothing else is affected. */
const broken = (s: SessionState, c: ClientSide, detail: string): void => {
  metric(s, "vdrelay_client_protocol_errors_total")
  closeClient(s, c, "protocol", detail, "protocol")
}

const U32 = 0x1_0000_0000
const isU32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n < U32

/** FILE_XFER_STATUS for a START the policy refused: DISABLED if the sender understands detailed errors, else ERROR. */
const refuseFileXfer = (s: SessionState, c: ClientSide, start: Uint8Array): void => {
  if (start.length < 4) return
  const detailed = hasCap(c.caps, Cap.FileXferDetailedErrors)
  const enc = encodeFileXferStatus({ _tag: "FileXferStatus", id: u32At(start, 0), result: detailed ? FileXferResult.Disabled : FileXferResult.Error }, detailed)
  if (enc._tag !== "Ok") return
  const seq = allocSeq(s)
  enqueue(s, c, { frame: { t: "msg", seq, type: MessageType.FileXferStatus, size: enc.value.length, data: enc.value, end: true }, bytes: enc.value.length, seq })
}

/** Per-sender order: message `id` would overtake one the relay asked for again (the SDK puts it back behind it). */
const overtakes = (c: ClientSide, id: number): Refusal | undefined =>
  c.owed.size > 0 && !c.owed.has(id) && id > Math.min(...c.owed)
    ? { code: "resend", detail: "an earlier message of this console is being sent again: send this one after it" }
    : undefined

const refusal = (s: SessionState, c: ClientSide, f: Frame<"msg">): { code: NoticeCode; detail: string } | undefined => {
  const behind = overtakes(c, f.id)
  if (behind !== undefined) return behind
  c.owed.delete(f.id)
  // Resent after a crash of the relay that lost its answer: the agent connection it went to has ended since. The SDK
  // resends in id order before anything new, so the first message not sent `again` ends that window.
  if (f.again !== true) c.amnesicEpoch = null
  else if (c.amnesicEpoch !== null && c.amnesicEpoch !== s.epoch)
    return { code: "dropped-by-disconnect", detail: "sent before a relay restart to an agent connection that has ended; never written to another one" }
  if (c.role !== "controller") return { code: "dropped-by-role", detail: "viewers cannot send to the agent" }
  if (!reachable(s)) return { code: "agent-not-connected", detail: "no agent is connected" }
  return checkHeader(f.type, f.size, s.policy, s.limits, s.rawCaps)
}

const onMsg = (s: SessionState, c: ClientSide, f: Frame<"msg">): void => {
  if (c.inMsg !== null) return broken(s, c, `msg ${f.id} while message ${c.inMsg.id} is open`)
  if (!isU32(f.id) || !isU32(f.type) || !isU32(f.size) || f.data.length > f.size || f.end !== (f.data.length === f.size))
    return broken(s, c, `msg ${f.id}: inconsistent size/data/end`)
  if (!spend(s, c, f.data.length)) return
  const prior = c.answered.get(f.id)
  if (prior !== undefined) return duplicate(s, c, f, prior)
  const no = refusal(s, c, f)
  c.inMsg = { id: f.id, type: f.type, size: f.size, received: f.data.length, mode: "drop", buf: new Uint8Array(0) }
  c.dirty = true
  if (no !== undefined) {
    notice(s, c, no.code, no.detail, f.id, f.type)
    if (f.type === MessageType.FileXferStart && no.code === "dropped-by-policy") refuseFileXfer(s, c, f.data)
    c.creditFree += f.data.length
    returnCredit(s, c)
  } else if (f.type === STREAMED_TYPE && f.size > s.limits.storeAndForwardBytes) {
    c.inMsg.mode = "stream"
    streamStart(s, c.id, f.id, f.type, f.size)
    forward(s, c, f.data)
  } else {
    c.inMsg.mode = "store"
    c.inMsg.buf = new Uint8Array(f.size)
    c.inMsg.buf.set(f.data, 0)
  }
  if (f.end) complete(s, c)
}

const onMore = (s: SessionState, c: ClientSide, f: Frame<"more">): void => {
  const m = c.inMsg
  if (m === null || m.id !== f.id) return broken(s, c, `more for message ${f.id}, which is not open`)
  if (m.orphan === true) {
    if (!spend(s, c, f.data.length)) return
    c.creditFree += f.data.length
    if (f.end) c.inMsg = null
    return returnCredit(s, c)
  }
  if (f.data.length > m.size - m.received || f.end !== (m.received + f.data.length === m.size))
    return broken(s, c, `more ${f.id}: data past the declared size or a wrong end flag`)
  if (!spend(s, c, f.data.length)) return
  if (m.mode === "store") m.buf.set(f.data, m.received)
  m.received += f.data.length
  if (m.mode === "stream") forward(s, c, f.data)
  else if (m.mode === "drop") {
    c.creditFree += f.data.length
    returnCredit(s, c)
  }
  if (f.end) complete(s, c)
}

/**
 * A message id this seat already sent whole: a console resumed after a drop resends what it had no answer for. It is
 * not written again; its frames are absorbed and, at its end, the answer is repeated (a pending one comes with `wrote`).
 */
const duplicate = (s: SessionState, c: ClientSide, f: Frame<"msg">, prior: Answer): void => {
  metric(s, "vdrelay_client_duplicates_total")
  c.inMsg = { id: f.id, type: f.type, size: f.size, received: f.data.length, mode: "drop", buf: new Uint8Array(0), dup: prior }
  c.dirty = true
  c.creditFree += f.data.length
  returnCredit(s, c)
  if (f.end) complete(s, c)
}

const answerAgain = (s: SessionState, c: ClientSide, id: number, type: number, a: Answer): void => {
  if (a === "pending") return
  if (a === "ack") return enqueue(s, c, { frame: { t: "ack", id }, bytes: 0 })
  notice(s, c, a, "this message was answered before the link dropped (answer repeated)", id, type)
}

/** Charges relay-bound credit; a client far beyond what it was granted breaks the protocol. */
const spend = (s: SessionState, c: ClientSide, n: number): boolean => {
  c.creditOwed += n
  if (c.creditOwed <= 2 * s.limits.clientCredit) return true
  broken(s, c, `client sent ${c.creditOwed} bytes beyond its credit`)
  return false
}

/** Streams bytes to the bridge; while the tunnel is down they are held, their credit withheld (hold.ts). */
const forward = (s: SessionState, c: ClientSide, data: Uint8Array): void => {
  if (s.bridge === null && s.guest.stream !== null && !fitsHeld(s, s.guest.stream.chunker.outputSizeFor(data.length))) {
    c.creditFree += data.length
    return dropInbound(s, c, "agent-not-connected", FULL)
  }
  if (!streamPush(s, data)) return
  c.creditFree += data.length
  returnCredit(s, c)
}

const FULL = "the bridge tunnel is reconnecting and the relay holds all it can until it is back"

const complete = (s: SessionState, c: ClientSide): void => {
  const m = c.inMsg!
  c.inMsg = null
  c.dirty = true
  if (m.dup !== undefined) return answerAgain(s, c, m.id, m.type, m.dup)
  if (m.mode !== "store") return
  // Started before the relay asked for an earlier one again, it must still not be written ahead of it.
  const bad = overtakes(c, m.id) ?? (!reachable(s)
    ? { code: "agent-not-connected" as const, detail: "no agent is connected" }
    : checkPayload(m.type, m.buf, s.rawCaps, s.limits) ??
      cancelledXfer(c, m.type, m.buf) ??
      (s.bridge === null && !fitsHeld(s, chunkedSize(m.size)) ? { code: "agent-not-connected" as const, detail: FULL } : undefined))
  if (bad !== undefined) {
    notice(s, c, bad.code, bad.detail, m.id, m.type)
    c.creditFree += m.size
    return returnCredit(s, c)
  }
  if (m.type === MessageType.AnnounceCapabilities) {
    const a = decodeAnnounceCapabilities(m.buf)
    if (a._tag === "Ok") c.caps = a.value.caps
  }
  trackXfer(s, c, m.type, m.buf)
  remember(s, c.answered, m.id, "pending")
  // Its credit comes back once it is handed to the bridge (at once, or when a held message is written).
  writeWhole(s, Port.Client, m.type, m.buf, { client: c.id, id: m.id }, m.size)
}

/** Data or status for a transfer the relay cancelled while this console was away: the agent no longer has it. */
const cancelledXfer = (c: ClientSide, type: number, buf: Uint8Array): Refusal | undefined =>
  (type === MessageType.FileXferData || type === MessageType.FileXferStatus) && c.cancelled.has(u32At(buf, 0))
    ? { code: "dropped-by-disconnect", detail: `file transfer ${u32At(buf, 0)} was cancelled when the link dropped` }
    : undefined

/** Transfers open on the agent, to cancel them if this console's link is lost (control.ts). */
const trackXfer = (s: SessionState, c: ClientSide, type: number, buf: Uint8Array): void => {
  if (type === MessageType.FileXferStart) {
    c.cancelled.delete(u32At(buf, 0))
    xferStarted(c, u32At(buf, 0))
  } else if (type === MessageType.FileXferStatus) xferEnded(s, u32At(buf, 0))
}

const onAbort = (s: SessionState, c: ClientSide, f: Frame<"abort">): void => {
  const m = c.inMsg
  // The console gives up an id it was asked to send again: later ones no longer wait for it.
  if (c.owed.delete(f.id)) c.dirty = true
  if (m === null || m.id !== f.id) return
  if (m.mode === "stream" && s.guest.stream?.client === c.id) streamAbort(s)
  c.creditFree += m.mode === "store" ? m.received : 0
  c.inMsg = null
  c.dirty = true
  returnCredit(s, c)
}

const onMouse = (s: SessionState, c: ClientSide, f: Frame<"mouse">): void => {
  const why: [NoticeCode, string] | undefined =
    c.role !== "controller"
      ? ["dropped-by-role", "viewers cannot move the pointer"]
      : !isU32(f.x) || !isU32(f.y) || !isU32(f.buttons) || !Number.isInteger(f.display) || f.display < 0 || f.display > 255
        ? ["invalid-message", "mouse fields out of range"]
        : !reachable(s)
          ? ["agent-not-connected", "no agent is connected"]
          : !agentTakesMouse(s)
            ? ["dropped-by-policy", "the agent did not announce MOUSE_STATE"]
            : undefined
  if (why !== undefined) {
    // One notice until a pointer update gets through again: pointer motion is too frequent to answer each.
    if (!c.mouseNoticed) notice(s, c, why[0], why[1], undefined, MessageType.MouseState)
    else metric(s, "vdrelay_client_drops_total", { code: why[0] })
    c.mouseNoticed = true
    return
  }
  c.mouseNoticed = false
  sendMouse(s, { x: f.x, y: f.y, buttons: f.buttons, display: f.display })
}

export const onClientFrame = (s: SessionState, c: ClientSide, f: ClientToRelay): void => {
  switch (f.t) {
    case "hello": return broken(s, c, "hello after the link was established")
    case "msg": return onMsg(s, c, f)
    case "more": return onMore(s, c, f)
    case "abort": return onAbort(s, c, f)
    case "mouse": return onMouse(s, c, f)
    case "credit":
      if (!Number.isInteger(f.bytes) || f.bytes <= 0 || f.bytes > 2 ** 31) return broken(s, c, `credit of ${f.bytes} bytes`)
      c.credit = Math.min(c.credit + f.bytes, 2 ** 31)
      c.dirty = true // the attachment keeps the credit, so a restart neither stalls nor overruns this client
      return flushOf(s, c)
    case "got":
      if (!c.confirms || !Number.isSafeInteger(f.seq)) return broken(s, c, "got without hello.confirms")
      confirmed(s, c, f.seq)
      return
    case "control": return takeControl(s, c)
    case "ping": return enqueue(s, c, { frame: { t: "pong", n: f.n }, bytes: 0 })
  }
}
