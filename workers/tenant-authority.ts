// TenantAuthority: one Durable Object per tenant holding the tenant-wide revocations (token ids, and "every token issued
// before"), checked by the Worker on every VM request, and the VMs of the tenant that have links, so that a tenant-wide
// revocation reaches their open links at once (fan-out to each VmSession). docs/security.md, "Revocation".
import { DurableObject } from "cloudflare:workers"
import { revokeRequest } from "./forward.ts"
import { isRevocation, type Revocation } from "./link-auth.ts"

export interface TenantCheck {
  readonly tenant: string
  readonly vm: string
  readonly jti: string
  readonly iat: number
  /** Remember the VM as having links (upgrades only): a later tenant-wide revocation must reach it. */
  readonly register: boolean
}

export class TenantAuthority extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS vms (vm TEXT PRIMARY KEY);
      CREATE TABLE IF NOT EXISTS revoked_jti (jti TEXT PRIMARY KEY, until INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS revoked_before (k INTEGER PRIMARY KEY CHECK (k = 0), iat INTEGER NOT NULL);`)
  }

  /** Why the token may not be used, or null; registers the VM first, so no revocation can miss a link let in here. */
  check(c: TenantCheck): string | null {
    const sql = this.ctx.storage.sql
    if (c.register) sql.exec("INSERT INTO vms (vm) VALUES (?) ON CONFLICT (vm) DO NOTHING", c.vm)
    if (sql.exec("SELECT 1 FROM revoked_jti WHERE jti = ?", c.jti).toArray().length > 0) return "token revoked"
    const cut = sql.exec<{ iat: number }>("SELECT iat FROM revoked_before").toArray()[0]?.iat
    return cut !== undefined && c.iat < cut ? "token revoked" : null
  }

  /** Stores a tenant-wide revocation and applies it to every registered VM's open links; VMs without links are forgotten. */
  async revoke(tenant: string, rule: Revocation): Promise<{ readonly vms: number; readonly closed: number }> {
    if (!isRevocation(rule)) throw new Error("bad revocation")
    const sql = this.ctx.storage.sql
    if ("jti" in rule) {
      sql.exec("DELETE FROM revoked_jti WHERE until < ?", Math.floor(Date.now() / 1000))
      sql.exec("INSERT INTO revoked_jti (jti, until) VALUES (?, ?) ON CONFLICT (jti) DO UPDATE SET until = MAX(until, excluded.until)", rule.jti, rule.until)
    } else {
      sql.exec("INSERT INTO revoked_before (k, iat) VALUES (0, ?) ON CONFLICT (k) DO UPDATE SET iat = MAX(iat, excluded.iat)", rule.issuedBefore)
    }
    const vms = sql.exec<{ vm: string }>("SELECT vm FROM vms").toArray().map((r) => r.vm)
    const results = await Promise.all(
      vms.map(async (vm) => {
        const stub = this.env.VM_SESSION.get(this.env.VM_SESSION.idFromName(`${tenant}/${vm}`))
        const res = await stub.fetch(revokeRequest(tenant, vm, rule))
        return { vm, ...((await res.json()) as { closed: number; open: number }) }
      }),
    )
    for (const r of results) if (r.open === 0) sql.exec("DELETE FROM vms WHERE vm = ?", r.vm)
    return { vms: vms.length, closed: results.reduce((n, r) => n + r.closed, 0) }
  }
}
