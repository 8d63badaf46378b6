// Small helpers that append commands to the step in progress: metrics (also counted for /status), logs, notices.
import type { NoticeCode } from "../link/types.ts"
import type { ClientSide, SessionState } from "./state.ts"
import { enqueue } from "./client-queue.ts"
import { remember } from "./seats.ts"

export const metric = (s: SessionState, name: string, labels?: Record<string, string>, by = 1): void => {
  s.out.push(labels === undefined ? { _tag: "Metric", name, by } : { _tag: "Metric", name, by, labels })
  const key = labels === undefined ? name : `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",")}}`
  s.counters[key] = (s.counters[key] ?? 0) + by
  s.persistDirty = true
}

export const log = (
  s: SessionState,
  level: "info" | "warn" | "error",
  event: string,
  fields: Record<string, string | number | boolean> = {},
): void => {
  s.out.push({ _tag: "Log", level, event, fields })
}

/** Tells a client one of its messages (or frames) was dropped, and counts the drop. */
export const notice = (s: SessionState, c: ClientSide, code: NoticeCode, detail: string, id?: number, type?: number): void => {
  metric(s, "vdrelay_client_drops_total", { code })
  // Its attachment lists the ids still in flight: keep it in step with the answer.
  if (id !== undefined) {
    c.dirty = true
    remember(s, c.answered, id, code)
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
