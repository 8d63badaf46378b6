// Audit lines: one structured log line per security event (join, refusal, takeover, policy change, key set loaded,
// revocation, expiry, token refresh, proof-of-possession failure), marked `"audit":true` so a log pipeline can keep them
// apart. Fields are names, ids and reasons only: never a token, a signature or key material (docs/security.md).

export type AuditEvent =
  | "join"
  | "refused"
  | "takeover"
  | "policy-change"
  | "keys-loaded"
  | "keys-misconfigured"
  | "revocation"
  | "revoked-link"
  | "expired-link"
  | "token-refreshed"
  | "token-refresh-refused"
  | "proof-refused"
  | "proof-accepted"

const WARN: ReadonlySet<AuditEvent> = new Set(["refused", "takeover", "proof-refused", "token-refresh-refused", "keys-misconfigured", "revoked-link"])

export const audit = (event: AuditEvent, fields: Readonly<Record<string, string | number | boolean | undefined>>): void => {
  const defined: Record<string, string | number | boolean> = { audit: true }
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) defined[k] = v
  // The same line shape as session-host.ts's `log` (one JSON object: level, event, fields).
  const level = event === "keys-misconfigured" ? "error" : WARN.has(event) ? "warn" : "info"
  const line = JSON.stringify({ level, event, ...defined })
  if (level === "error") console.error(line)
  else if (level === "warn") console.warn(line)
  else console.log(line)
}
