// docs/reference.md against the code: every route (matched by the Worker's route table, with the token roles it
// accepts), HTTP status, close code, configuration key, metric, counter and log event the code has is in the reference,
// and the reference lists nothing the code does not have. Names come from the modules themselves where they are plain
// data (routes, close codes, policy defaults, bridge limits) and from the sources where they are string literals at
// their call sites (log events, metrics, counters, statuses). A failure names what is missing on which side.
import { readdirSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { defaultLimits } from "../../src/bridge/config.ts"
import { CloseCode } from "../../src/link/close-codes.ts"
import { defaultPolicy } from "../../src/link/types.ts"
import { matchRoute, rolesFor } from "../../workers/routes.ts"

const ROOT = resolve(import.meta.dirname, "../..")
const DOC = readFileSync(join(ROOT, "docs/reference.md"), "utf8")

const sources = (dir: string): Array<[file: string, text: string]> =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .map((f) => [`${dir}/${f}`, readFileSync(join(ROOT, dir, f), "utf8")])
const text = (dir: string): string => sources(dir).map(([, t]) => t).join("\n")
const all = (re: RegExp, s: string): Array<string> => [...s.matchAll(re)].map((m) => m[1]!)

/** The rows (cells, trimmed) of the first table under the heading that starts with `heading`. */
export const table = (doc: string, heading: string): Array<Array<string>> => {
  const lines = doc.split("\n")
  const at = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+ /, "").startsWith(heading))
  if (at < 0) throw new Error(`docs/reference.md has no section "${heading}"`)
  const rows: Array<Array<string>> = []
  for (const line of lines.slice(at + 1)) {
    if (/^#+ /.test(line)) break
    if (!line.startsWith("|")) {
      if (rows.length > 0) break
      continue
    }
    rows.push(line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()))
  }
  if (rows.length < 3) throw new Error(`docs/reference.md: section "${heading}" has no table`)
  return rows.slice(2) // header and separator
}
/** The `backticked` names in a cell. */
const ticks = (cell: string): Array<string> => all(/`([^`]+)`/g, cell)
const firstColumn = (heading: string): Array<string> => table(DOC, heading).flatMap((r) => ticks(r[0]!))
const sorted = (xs: Iterable<string>): Array<string> => [...new Set(xs)].sort()

describe("docs/reference.md matches the code", () => {
  it("routes: every documented route is matched by the Worker with its method and roles, and every route is documented", () => {
    const rows = table(DOC, "Routes")
    const kinds = new Set<string>()
    for (const [methods, pathCell, rolesCell] of rows) {
      const path = ticks(pathCell!)[0]!
      for (const method of methods!.split(/,\s*/)) {
        const m = matchRoute(method, path.replace("{vm}", "vm-1").replace("{path}", "console.js"))
        expect(m._tag, `${method} ${path}`).toBe("Route")
        if (m._tag !== "Route") continue
        kinds.add(m.route.kind)
        const roles = m.route.kind in rolesFor ? rolesFor[m.route.kind as keyof typeof rolesFor] : []
        expect(sorted(ticks(rolesCell!)), `roles of ${method} ${path}`).toEqual(sorted(roles))
      }
    }
    // Every route kind the table has: the VM routes of its path pattern, the roles table's, and the two without a token.
    const routes = readFileSync(join(ROOT, "workers/routes.ts"), "utf8")
    const vmKinds = /\(((?:[a-z]+\|)+[a-z]+)\)\$\//.exec(routes.match(/const VM_PATH = .*/)![0])?.[1]?.split("|") ?? []
    expect(vmKinds.length).toBeGreaterThan(0)
    expect(sorted(kinds)).toEqual(sorted(["healthz", "console-page", ...vmKinds, ...Object.keys(rolesFor)]))
  })

  it("HTTP statuses: the Worker's and the reference's are the same set", () => {
    const code = text("workers")
    const found = [
      ...all(/(?:status:\s*|status === |refusal\(|refuse\()([1-5]\d\d)\b/g, code),
      ...all(/\?\s*([1-5]\d\d)\s*:\s*[1-5]\d\d/g, code),
      ...all(/\?\s*[1-5]\d\d\s*:\s*([1-5]\d\d)/g, code),
      "200", // Response.json and a plain Response
    ]
    expect(sorted(table(DOC, "HTTP status codes").map((r) => r[0]!.replaceAll("`", "")))).toEqual(sorted(found))
  })

  it("close codes: every CloseCode with its number", () => {
    const documented = table(DOC, "Close codes").map((r) => `${r[0]!.replaceAll("`", "")} ${ticks(r[1]!)[0]}`)
    expect(sorted(documented)).toEqual(sorted(Object.entries(CloseCode).map(([name, n]) => `${n} ${name}`)))
  })

  it("the policy document: every field of the policy", () => {
    expect(sorted(firstColumn("PUT /v1/vms/{vm}/policy"))).toEqual(sorted(Object.keys(defaultPolicy)))
  })

  it("the status document: every field of VmStatus", () => {
    const status = readFileSync(join(ROOT, "workers/status.ts"), "utf8")
    const block = /export interface VmStatus \{([\s\S]*?)\n\}/.exec(status)![1]!
    const fields = all(/readonly (\w+)\??:/g, block)
    const documented = firstColumn("GET /v1/vms/{vm}/status").map((k) => k.split(".").at(-1)!)
    expect(sorted(documented)).toEqual(sorted(fields))
  })

  it("Worker configuration: every var in wrangler.toml and workers/env.d.ts, and the bindings", () => {
    const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8")
    const vars = all(/^([A-Z][A-Z0-9_]+)\s*=/gm, toml)
    const declared = all(/readonly (VDRELAY_[A-Z0-9_]+)\??:/g, readFileSync(join(ROOT, "workers/env.d.ts"), "utf8"))
    const bindings = all(/name\s*=\s*"([A-Z_]+)"/g, toml)
    expect(sorted(firstColumn("Worker configuration"))).toEqual(sorted([...vars, ...declared, ...bindings]))
  })

  it("bridge configuration: every key the config parser accepts", () => {
    const config = readFileSync(join(ROOT, "src/bridge/config.ts"), "utf8")
    const keys = all(/onlyKeys\([^[]*\[([^\]]*)\]/g, config).flatMap((list) => all(/"([^"]+)"/g, list))
    // The libvirt section's keys are checked by its own parser (libvirt-config.ts, `KEYS`).
    const libvirt = /const KEYS = \[([^\]]*)\]/.exec(readFileSync(join(ROOT, "src/bridge/libvirt-config.ts"), "utf8"))![1]!
    keys.push(...all(/"([^"]+)"/g, libvirt))
    const documented = firstColumn("Bridge configuration").map((k) => k.split(/\.|\[\]\.?/).filter((s) => s !== "").at(-1)!)
    expect(sorted(documented)).toEqual(sorted([...keys, ...Object.keys(defaultLimits), "limits", "reconnect", "qmp"]))
  })

  it("Worker metrics (the session's counters in /status): every name the session emits", () => {
    const emitted = all(/metric\(\s*s,\s*"(vdrelay_[a-z_]+)"/g, text("src/session"))
    expect(emitted.length).toBeGreaterThan(0)
    expect(sorted(firstColumn("Session metrics"))).toEqual(sorted(emitted))
  })

  it("edge counters (in /status): every counter the VmSession keeps", () => {
    const code = text("workers")
    // `frames.${dir}.${kind}` is documented as `frames.<dir>.<kind>`: compare with placeholders as `*`.
    const counted = all(/count\(\s*[`"]([^`"]+)[`"]/g, code).map((k) => k.replace(/\$\{[^}]+\}/g, "*"))
    expect(counted.length).toBeGreaterThan(0)
    expect(sorted(firstColumn("Edge counters").map((k) => k.replace(/<[^>]+>/g, "*")))).toEqual(sorted(counted))
  })

  it("bridge metrics: every family of the bridge's /metrics", () => {
    const families = all(/^\s+(vdrelay_bridge_[a-z_]+):\s*\[/gm, readFileSync(join(ROOT, "src/bridge/metrics.ts"), "utf8"))
    expect(families.length).toBeGreaterThan(0)
    expect(sorted(firstColumn("Bridge metrics"))).toEqual(sorted(families))
  })

  it("Worker log events: every audit event and every event the session and the VmSession log", () => {
    const auditType = /export type AuditEvent =([^=]*?)\n\n/.exec(readFileSync(join(ROOT, "workers/audit.ts"), "utf8"))![1]!
    const events = [
      ...all(/"([a-z-]+)"/g, auditType),
      ...all(/\blog\(\s*s,\s*"(?:info|warn|error)",\s*"([^"]+)"/g, text("src/session")),
      ...all(/(?<![.\w])log\(\s*"(?:info|warn|error)",\s*"([^"]+)"/g, text("workers")),
    ]
    expect(sorted(firstColumn("Worker log events"))).toEqual(sorted(events))
  })

  it("bridge log events: every event the bridge logs", () => {
    // `.log(level, event, …)`: the event is a literal, a choice of literals, or a template (`${what}-retry`, listed
    // in the reference once per value it takes, and matched here by its shape).
    const events: Array<string> = []
    const templates: Array<RegExp> = []
    for (const [, src] of sources("src/bridge")) {
      for (const m of src.matchAll(/(?<!console)\.log\(\s*(?:"[a-z]+"|[^,"]+?"[a-z]+"[^,]*?|[a-zA-Z.]+),\s*([^,]+?),/g)) {
        const arg = m[1]!
        if (arg.startsWith("`")) templates.push(new RegExp(`^${arg.slice(1, -1).replace(/\$\{[^}]+\}/g, "[a-z]+")}$`))
        else events.push(...all(/"([^"]+)"/g, arg))
      }
    }
    const documented = firstColumn("Bridge log events")
    expect(events.length).toBeGreaterThan(0)
    const byTemplate = documented.filter((e) => !events.includes(e))
    expect(byTemplate.filter((e) => !templates.some((t) => t.test(e))), "documented events the bridge never logs").toEqual([])
    expect(sorted(events.filter((e) => !documented.includes(e))), "events the bridge logs that the reference lacks").toEqual([])
    for (const t of templates) expect(documented.some((e) => t.test(e)), `an event of the shape ${t}`).toBe(true)
  })
})
