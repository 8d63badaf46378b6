// The VmSession's SQLite storage: the actor's PersistedState, the edge's counters, and single-use token ids remembered
// until they expire. Every call is synchronous (SQLite-backed Durable Object storage); the output gate holds outgoing
// messages until the writes before them are durable.
import type { PersistedState } from "../src/session/index.ts"

export type Counters = Record<string, number>

export class SessionStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS used_jti (jti TEXT PRIMARY KEY, exp INTEGER NOT NULL);`)
  }

  loadState(): PersistedState | null {
    const row = this.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = 'state'").toArray()[0]
    return row === undefined ? null : (JSON.parse(row.v) as PersistedState)
  }

  saveState(state: PersistedState): void {
    this.sql.exec("INSERT INTO meta (k, v) VALUES ('state', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", JSON.stringify(state))
  }

  loadCounters(): Counters {
    const row = this.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = 'edge-counters'").toArray()[0]
    return row === undefined ? {} : (JSON.parse(row.v) as Counters)
  }

  saveCounters(counters: Counters): void {
    this.sql.exec("INSERT INTO meta (k, v) VALUES ('edge-counters', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", JSON.stringify(counters))
  }

  /**
   * Records a single-use token id; false when it was already used. Ids are kept until `exp` (+ skew) so a replay is
   * refused for as long as the token would otherwise verify, and forgotten after that.
   */
  useOnce(jti: string, exp: number, nowSeconds: number, skewSeconds: number): boolean {
    this.sql.exec("DELETE FROM used_jti WHERE exp < ?", nowSeconds - skewSeconds)
    const seen = this.sql.exec("SELECT 1 FROM used_jti WHERE jti = ?", jti).toArray().length > 0
    if (seen) return false
    this.sql.exec("INSERT INTO used_jti (jti, exp) VALUES (?, ?)", jti, exp)
    return true
  }
}
