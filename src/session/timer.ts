// The session's one timer (owner of `timerAt`): the bridge grace, a held controller's grace and the end of a seat the
// agent stream is held for share a single SetTimer.
import type { SessionState } from "./state.ts"
import { awaitsReplay } from "./confirms.ts"

/** Earliest time a TimerFired is needed for: the bridge grace, a held controller's grace, a seat holding the replay. */
const nextDeadline = (s: SessionState): number | null => {
  let at = s.graceUntil
  for (const seat of s.seats.values())
    if ((seat.control || (s.replayHold && awaitsReplay(s, seat))) && (at === null || seat.until < at)) at = seat.until
  return at
}

/** Asks for the next TimerFired when the earliest deadline changed (one timer: a later SetTimer replaces it). */
export const armTimer = (s: SessionState): void => {
  const at = nextDeadline(s)
  if (at === null || at === s.timerAt) return
  s.timerAt = at
  s.out.push({ _tag: "SetTimer", at })
}

/** A TimerFired arrived: the next deadline is asked for again at the end of the step. */
export const timerDone = (s: SessionState): void => {
  s.timerAt = null
}
