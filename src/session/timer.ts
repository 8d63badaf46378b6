// The session's one timer (owner of `timerAt`): the bridge grace and a held controller's grace share a single SetTimer.
import type { SessionState } from "./state.ts"

/** Earliest time a TimerFired is needed for: the bridge grace or a held controller's grace. */
const nextDeadline = (s: SessionState): number | null => {
  let at = s.graceUntil
  for (const seat of s.seats.values()) if (seat.control && (at === null || seat.until < at)) at = seat.until
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
