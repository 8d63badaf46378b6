// Answers to client messages: every message id ends with exactly one `ack` or one `notice` carrying it. A sender whose
// link is gone may resume its seat, so its answers are kept there (seats.ts) and repeated to the resumed console.
import type { NoticeCode } from "../link/types.ts"
import type { Answer, ClientSide, SessionState } from "./state.ts"
import type { ClientId } from "./types.ts"
import { enqueue } from "./client-queue.ts"
import { metric } from "./emit.ts"

/** Ids a console may owe (told `resend`, not sent again) before the oldest is forgotten. */
const OWED_MAX = 1024

/** Records the answer to message `id` in a bounded, oldest-first map; "resend" forgets it (the id may come again). */
export const remember = (s: SessionState, answered: Map<number, Answer>, id: number, a: Answer | "resend"): void => {
  answered.delete(id)
  if (a === "resend") return
  answered.set(id, a)
  while (answered.size > s.limits.seatAnswers) answered.delete(answered.keys().next().value!)
}

/** The answer to a message of a client whose link is gone: its seat, if any, keeps it for the resumed console. */
const rememberAbsent = (s: SessionState, client: ClientId, id: number, a: Answer | "resend"): void => {
  for (const seat of s.seats.values()) if (seat.client === client) return remember(s, seat.answered, id, a)
}

/** Records (without telling) what message `id` of `client` stands at, whether its link is open or its seat waits. */
export const record = (s: SessionState, client: ClientId, id: number, a: Answer): void => {
  const c = s.clients.get(client)
  if (c !== undefined) remember(s, c.answered, id, a)
  else rememberAbsent(s, client, id, a)
}

/** Tells a client one of its messages (or frames) was dropped, and counts the drop. */
export const notice = (s: SessionState, c: ClientSide, code: NoticeCode, detail: string, id?: number, type?: number): void => {
  metric(s, "vdrelay_client_drops_total", { code })
  // Its attachment lists the ids still in flight: keep it in step with the answer.
  if (id !== undefined) {
    c.dirty = true
    remember(s, c.answered, id, code)
    if (code === "resend") {
      c.owed.add(id)
      // A console that never sends them again only holds itself back; its debt stays bounded.
      if (c.owed.size > OWED_MAX) c.owed.delete(Math.min(...c.owed))
    }
  }
  const frame =
    id === undefined
      ? type === undefined
        ? { t: "notice" as const, code, detail }
        : { t: "notice" as const, code, type, detail }
      : type === undefined
        ? { t: "notice" as const, code, id, detail }
        : { t: "notice" as const, code, id, type, detail }
  enqueue(s, c, { frame, bytes: 0 })
}

/**
 * Answers message `id` of `client`: told now if its link is open (`ack`, or a notice with `detail`), else kept in its
 * seat. The one place that decides between the two.
 */
export const answer = (s: SessionState, client: ClientId, id: number, a: "ack" | NoticeCode, detail: string): void => {
  const c = s.clients.get(client)
  if (c === undefined) return rememberAbsent(s, client, id, a)
  if (a !== "ack") return notice(s, c, a, detail, id)
  enqueue(s, c, { frame: { t: "ack", id }, bytes: 0 })
  remember(s, c.answered, id, "ack")
  c.dirty = true
}
