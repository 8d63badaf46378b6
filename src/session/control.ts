// Control held for a departed controller, and its release: the agent hears CLIENT_DISCONNECTED (spec §5.7 case 3)
// when a controller goes for good, not when its link drops for a blip (DESIGN.md invariant 5).
import { FileXferResult, MessageType, Port } from "../protocol/constants.ts"
import { encodeFileXferStatus } from "../protocol/codec-file-xfer.ts"
import type { ClientSide, Seat, SessionState } from "./state.ts"
import { metric } from "./emit.ts"
import { dropPendingMouse, sendClientDisconnected, writeWhole } from "./guest-out.ts"
import { reachable } from "./reach.ts"
import { takeXfers, xfersEnded } from "./xfers.ts"

/**
 * A departed controller keeps control for the grace: nothing is said to the agent yet, except that its transfers are
 * cancelled at once (the agent's replies to them could not reach the console and are not replayed, so a transfer
 * continued after a resume could hang), and the resumed console hears CANCELLED for them.
 */
export const holdControl = (s: SessionState, c: ClientSide, seat: Seat): void => {
  seat.control = true
  dropPendingMouse(s)
  const ids = takeXfers(c)
  for (const id of ids) {
    seat.cancelled.add(id)
    if (!reachable(s)) continue
    const enc = encodeFileXferStatus({ _tag: "FileXferStatus", id, result: FileXferResult.Cancelled }, false)
    if (enc._tag === "Ok") writeWhole(s, Port.Client, MessageType.FileXferStatus, enc.value, null)
  }
  if (ids.length > 0) metric(s, "vdrelay_file_xfers_cancelled_total", { why: "client-lost" }, ids.length)
}

/** The agent's client side is reset (spec §5.7 case 3): it releases the clipboard and ends every transfer. */
export const controllerReleased = (s: SessionState): void => {
  dropPendingMouse(s)
  sendClientDisconnected(s)
  xfersEnded(s)
}

/** A seat holding control gives it up (dropped, expired, or resumed as a viewer): the agent is told. */
export const releaseSeat = (s: SessionState, seat: Seat): void => {
  if (!seat.control) return
  seat.control = false
  s.persistDirty = true
  controllerReleased(s)
}

/** A seat holding control loses it (someone takes control): the agent hears CLIENT_DISCONNECTED now. */
export const releaseHeld = (s: SessionState): void => {
  for (const seat of s.seats.values()) releaseSeat(s, seat)
}
