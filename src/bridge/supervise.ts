// Keeps one connection alive: runs a scoped session again and again with exponential, jittered, capped backoff; the
// backoff starts over once a session got established (chardev connected, tunnel welcomed, QMP negotiated).
import { Cause, Duration, Effect, Option, Schedule, type Scope } from "effect"
import { type BridgeError, describeCause } from "./errors.ts"
import type { Logger } from "./log.ts"

export interface Backoff {
  readonly baseMs: number
  readonly capMs: number
}

/** Delays base·2ⁿ, capped at `capMs`, each then jittered by ×[0.8, 1.2] so many VMs do not reconnect in lockstep. */
export const backoffSchedule = (b: Backoff): Schedule.Schedule<unknown> =>
  Schedule.exponential(Duration.millis(b.baseMs), 2).pipe(Schedule.union(Schedule.spaced(Duration.millis(b.capMs))), Schedule.jittered)

/**
 * The backoff fed whether the last session got established: such a session starts the schedule over, so the next
 * attempt waits `baseMs` again. Never ends.
 */
export const retrySchedule = (b: Backoff): Schedule.Schedule<boolean, boolean> =>
  Schedule.passthrough(backoffSchedule(b) as Schedule.Schedule<unknown, boolean>).pipe(Schedule.resetWhen((established) => established))

/** Handed to a session so it can say it got established (the next failure then retries after `baseMs` again). */
export interface Established {
  established: boolean
}

/** Runs `session` forever; each failure is logged as `<what>-retry` with its cause and the delay. Never fails. */
export const supervise = (
  what: string,
  session: (mark: Established) => Effect.Effect<never, BridgeError, Scope.Scope>,
  backoff: Backoff,
  log: Logger,
): Effect.Effect<never> => {
  let failures = 0
  const attempt = Effect.suspend(() => {
    const mark: Established = { established: false }
    return Effect.exit(Effect.scoped(session(mark))).pipe(
      Effect.map((exit) => {
        failures = mark.established ? 1 : failures + 1
        const cause = exit._tag === "Success" ? "ended" : Option.match(Cause.failureOption(exit.cause), { onNone: () => Cause.pretty(exit.cause), onSome: describeCause })
        // One line per outage, then one per ten attempts: a VM that stays off must not flood the journal.
        log.log(failures % 10 === 1 ? "warn" : "debug", `${what}-retry`, { cause, failures })
        return mark.established
      }),
    )
  })
  return attempt.pipe(Effect.repeat(retrySchedule(backoff)), Effect.andThen(Effect.never))
}
