// Tokens on open links (docs/security.md, "Open links"): each link remembers the token it joined with (id, issue time,
// expiry) and is closed with 4401 when that token expires, unless a fresh token for the same tenant, VM and role came
// over the link first; revocations (by token id, or every token issued before a time, for the VM or its tenant) close
// the links they match at once and refuse later joins. The Durable Object's one alarm is shared between the session
// actor's timer and the earliest link expiry.
import { verifyToken, type Claims } from "../src/auth/token.ts"
import { decodePeerAuth } from "../src/link/auth-codec.ts"
import { audit } from "./audit.ts"
import type { ForwardedClaims } from "./forward.ts"
import { skewSeconds, tokenKeys } from "./keys.ts"

/** Tag naming a link across hibernation (its row in `link_tokens`). */
const LINK_TAG = "link:"

/** A revocation as the Worker forwards it; `issuedBefore` (seconds) revokes every token with an earlier `iat`. */
export type Revocation =
  | { readonly jti: string; readonly until: number }
  | { readonly scope: "vm" | "tenant"; readonly issuedBefore: number }

export const isRevocation = (v: unknown): v is Revocation => {
  if (typeof v !== "object" || v === null) return false
  const r = v as Record<string, unknown>
  const seconds = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0
  if ("jti" in r) return typeof r.jti === "string" && r.jti.length >= 8 && r.jti.length <= 128 && seconds(r.until)
  return (r.scope === "vm" || r.scope === "tenant") && seconds(r.issuedBefore)
}

interface LinkRow {
  readonly link: string
  readonly tenant: string
  readonly vm: string
  readonly role: string
  readonly jti: string
  readonly iat: number
  readonly exp: number
  readonly jkt: string | null
}

export interface LinkAuthHost {
  /** Ends a link with close 4401 (an `auth` error frame first). */
  readonly close: (ws: WebSocket, detail: string) => void
  readonly setAlarm: (at: number) => void
  readonly deleteAlarm: () => void
  readonly count: (key: string) => void
  /** Hands a frame held while a fresh token was checked to the link's usual path, in arrival order. */
  readonly replay: (ws: WebSocket, data: ArrayBuffer) => void
}

export class LinkAuth {
  /** Links whose fresh token is being checked, with the frames that arrived meanwhile (handled after, in order). */
  private readonly refreshing = new Map<WebSocket, ArrayBuffer[]>()

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly host: LinkAuthHost,
  ) {
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS link_tokens (link TEXT PRIMARY KEY, tenant TEXT NOT NULL, vm TEXT NOT NULL,
        role TEXT NOT NULL, jti TEXT NOT NULL, iat INTEGER NOT NULL, exp INTEGER NOT NULL, jkt TEXT);
      CREATE TABLE IF NOT EXISTS revoked_jti (jti TEXT PRIMARY KEY, until INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS revoked_before (scope TEXT PRIMARY KEY, iat INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS alarm_due (what TEXT PRIMARY KEY, at INTEGER);`)
  }

  private get sql(): SqlStorage {
    return this.ctx.storage.sql
  }

  /** Why these claims may not be used here any more, or undefined. */
  revoked(c: { readonly jti: string; readonly iat: number }): string | undefined {
    if (this.sql.exec("SELECT 1 FROM revoked_jti WHERE jti = ?", c.jti).toArray().length > 0) return "token revoked"
    const cut = this.sql.exec<{ iat: number }>("SELECT MAX(iat) AS iat FROM revoked_before").toArray()[0]?.iat
    return cut !== undefined && cut !== null && c.iat < cut ? "token revoked" : undefined
  }

  /** Records a new link's token; returns the tag to accept its socket with (then call `schedule`). */
  opened(claims: ForwardedClaims): string {
    const link = crypto.randomUUID()
    this.sql.exec(
      "INSERT INTO link_tokens (link, tenant, vm, role, jti, iat, exp, jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      link, claims.tenant, claims.vm, claims.role, claims.jti, claims.iat, claims.exp, claims.jkt ?? null,
    )
    return `${LINK_TAG}${link}`
  }

  /** The session actor asks for its timer (it used to own the alarm alone). */
  actorTimer(at: number): void {
    this.sql.exec("INSERT INTO alarm_due (what, at) VALUES ('actor', ?) ON CONFLICT (what) DO UPDATE SET at = excluded.at", at)
    this.schedule()
  }

  /** The alarm fired: ends expired links; true when the actor's timer is due too (or unknown: older alarms). */
  alarm(now: number): boolean {
    const row = this.sql.exec<{ at: number | null }>("SELECT at FROM alarm_due WHERE what = 'actor'").toArray()[0]
    const actorDue = row === undefined || (row.at !== null && row.at <= now)
    if (actorDue) this.sql.exec("INSERT INTO alarm_due (what, at) VALUES ('actor', NULL) ON CONFLICT (what) DO UPDATE SET at = NULL")
    const skew = skewSeconds(this.env)
    for (const [ws, r] of this.openLinks()) {
      if ((r.exp + skew) * 1000 > now) continue
      this.host.count("links.closed.expired")
      audit("expired-link", { tenant: r.tenant, vm: r.vm, role: r.role, jti: r.jti })
      this.host.close(ws, "token expired")
    }
    this.schedule()
    return actorDue
  }

  /** Stores a revocation and closes the open links it matches; returns how many it closed and how many stay open. */
  revoke(rule: Revocation): { readonly closed: number; readonly open: number } {
    if ("jti" in rule) {
      this.sql.exec("DELETE FROM revoked_jti WHERE until < ?", Math.floor(Date.now() / 1000))
      this.sql.exec("INSERT INTO revoked_jti (jti, until) VALUES (?, ?) ON CONFLICT (jti) DO UPDATE SET until = MAX(until, excluded.until)", rule.jti, rule.until)
    } else {
      this.sql.exec(
        "INSERT INTO revoked_before (scope, iat) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET iat = MAX(iat, excluded.iat)",
        rule.scope, rule.issuedBefore,
      )
    }
    let closed = 0
    const links = this.openLinks()
    for (const [ws, r] of links) {
      if (this.revoked(r) === undefined) continue
      closed++
      this.host.count("links.closed.revoked")
      audit("revoked-link", { tenant: r.tenant, vm: r.vm, role: r.role, jti: r.jti })
      this.host.close(ws, "token revoked")
    }
    this.schedule()
    return { closed, open: links.length - closed }
  }

  /**
   * A frame the session's codecs do not know on a joined link: a fresh token is taken here (true); anything else is
   * left to the caller's refusal (false).
   */
  frame(ws: WebSocket, data: ArrayBuffer): boolean {
    const d = decodePeerAuth(data)
    if (d._tag !== "Ok" || d.value.t !== "token") return false
    this.refreshing.set(ws, [])
    void this.refresh(ws, d.value.token).finally(() => {
      const held = this.refreshing.get(ws) ?? []
      this.refreshing.delete(ws)
      if (ws.readyState === WebSocket.OPEN) for (const f of held) this.host.replay(ws, f)
    })
    return true
  }

  /** True when the frame was held: it came while this link's fresh token is checked, and is handled after it. */
  held(ws: WebSocket, data: ArrayBuffer): boolean {
    const q = this.refreshing.get(ws)
    if (q === undefined) return false
    q.push(data)
    return true
  }

  private async refresh(ws: WebSocket, token: string): Promise<void> {
    const r = this.rowOf(ws)
    if (r === undefined) return // a link from before link rows existed: it keeps the lifetime it had
    const keys = tokenKeys(this.env)
    const v = keys instanceof Error ? undefined : await verifyToken(keys, token, { skewSeconds: skewSeconds(this.env) })
    let why = v === undefined ? "relay misconfigured" : v._tag === "AuthError" ? v.reason : this.mismatch(r, v.claims) ?? this.revoked(v.claims)
    if (why === undefined && v?._tag === "Ok") {
      // Tenant-wide revocations live in the tenant's authority (this VM may have registered after one was made).
      const { tenant, vm, jti, iat } = v.claims
      why = (await this.env.TENANT_AUTHORITY.get(this.env.TENANT_AUTHORITY.idFromName(tenant)).check({ tenant, vm, jti, iat, register: false })) ?? undefined
    }
    if (ws.readyState !== WebSocket.OPEN) return
    if (why !== undefined || v === undefined || v._tag !== "Ok") {
      this.host.count("links.refused.refresh")
      audit("token-refresh-refused", { tenant: r.tenant, vm: r.vm, role: r.role, jti: r.jti, reason: why ?? "refused" })
      return this.host.close(ws, `fresh token refused: ${why ?? "refused"}`)
    }
    const c = v.claims
    this.sql.exec("UPDATE link_tokens SET jti = ?, iat = ?, exp = ? WHERE link = ?", c.jti, c.iat, c.exp, r.link)
    this.host.count("links.token.refreshed")
    audit("token-refreshed", { tenant: r.tenant, vm: r.vm, role: r.role, jti: c.jti, previous: r.jti, kid: v.kid, exp: c.exp })
    this.schedule()
  }

  /** A fresh token must be for the same link: tenant, VM, role and (bridges) host key. */
  private mismatch(r: LinkRow, c: Claims): string | undefined {
    if (c.tenant !== r.tenant || c.vm !== r.vm) return "token is for another VM"
    if (c.role !== r.role) return "token has another role"
    if ((c.cnf?.jkt ?? null) !== r.jkt) return "token names another host key"
    if (c.once === true) return "single-use token"
    return undefined
  }

  private linkId(ws: WebSocket): string | undefined {
    return this.ctx.getTags(ws).find((t) => t.startsWith(LINK_TAG))?.slice(LINK_TAG.length)
  }

  private rowOf(ws: WebSocket): LinkRow | undefined {
    const id = this.linkId(ws)
    return id === undefined ? undefined : this.sql.exec<LinkRow & Record<string, SqlStorageValue>>("SELECT * FROM link_tokens WHERE link = ?", id).toArray()[0]
  }

  /** Open sockets with their rows; rows of links that are gone are deleted on the way. */
  private openLinks(): Array<[WebSocket, LinkRow]> {
    const rows = new Map(this.sql.exec<LinkRow & Record<string, SqlStorageValue>>("SELECT * FROM link_tokens").toArray().map((r) => [r.link, r] as const))
    const out: Array<[WebSocket, LinkRow]> = []
    const live = new Set<string>()
    for (const ws of this.ctx.getWebSockets()) {
      const id = this.linkId(ws)
      const r = id === undefined ? undefined : rows.get(id)
      if (r === undefined || ws.readyState !== WebSocket.OPEN) continue
      live.add(r.link)
      out.push([ws, r])
    }
    for (const id of rows.keys()) if (!live.has(id)) this.sql.exec("DELETE FROM link_tokens WHERE link = ?", id)
    return out
  }

  /** Sets the alarm to the earliest of the actor's timer and the open links' expiries (exp + skew). */
  schedule(): void {
    const actor = this.sql.exec<{ at: number | null }>("SELECT at FROM alarm_due WHERE what = 'actor'").toArray()[0]?.at ?? null
    const skew = skewSeconds(this.env)
    let next = actor ?? Infinity
    for (const [, r] of this.openLinks()) next = Math.min(next, (r.exp + skew) * 1000)
    if (next === Infinity) this.host.deleteAlarm()
    else this.host.setAlarm(next)
  }
}
