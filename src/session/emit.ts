// Small helpers that append commands to the step in progress: metrics (also counted for /status) and logs.
import type { SessionState } from "./state.ts"

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
