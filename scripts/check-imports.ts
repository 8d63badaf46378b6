// Import rules over the repository's TypeScript files, run by `npm run typecheck`: no import cycle in src/ and
// workers/ (the layering of docs/architecture.md), plus whatever one-way rules RULES lists.
//   node --import tsx scripts/check-imports.ts [--root DIR]
// Exits 1 and names every broken rule. Edges are read from the TypeScript syntax tree (comments and strings do not
// count): every import, `export … from` and `import()` with a relative specifier. An edge is type-only when nothing
// of it exists at run time (`import type`, or every name marked `type`). The cycle rule over src/ and workers/ ignores
// type-only edges: they are erased, so they cannot make a module see another half-initialised. src/session is held
// to the stricter rule, types included: its layers (docs/architecture.md) must not even name a type of a layer above.
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative, resolve, sep } from "node:path"
import { parseArgs } from "node:util"
import ts from "typescript"

/** Repository-relative path with forward slashes, e.g. "src/session/step.ts". */
type File = string
export interface Edge {
  readonly to: File
  /** Nothing of the import exists at run time. */
  readonly typeOnly: boolean
}
type Graph = ReadonlyMap<File, ReadonlyArray<Edge>>

/** One rule: the problems it finds in the import graph (empty when the rule holds). */
export interface Rule {
  readonly name: string
  readonly check: (graph: Graph) => string[]
}

const inside = (f: File, dirs: ReadonlyArray<string>): boolean => dirs.some((d) => f.startsWith(`${d}/`))

/** No import cycle among the files under `dirs` (edges leaving them are ignored; type-only ones unless `types`). */
export const noCycles = (dirs: ReadonlyArray<string>, opts: { readonly types: boolean }): Rule => ({
  name: `no import cycle in ${dirs.join(", ")} (${opts.types ? "type-only imports included" : "runtime imports"})`,
  check: (graph) => {
    const nodes = [...graph.keys()].filter((f) => inside(f, dirs))
    const edges = (f: File): File[] =>
      (graph.get(f) ?? []).filter((e) => inside(e.to, dirs) && (opts.types || !e.typeOnly)).map((e) => e.to)
    return stronglyConnected(nodes, edges)
      .filter((scc) => scc.length > 1 || edges(scc[0]!).includes(scc[0]!))
      .map((scc) => `cycle of ${scc.length} file(s): ${cycleThrough(scc, edges).join(" → ")}`)
  },
})

/** Files under `from` import nothing under any of `to` (e.g. test/ never imports scripts/). */
export const forbidImports = (from: string, to: ReadonlyArray<string>): Rule => ({
  name: `${from}/ imports nothing of ${to.map((d) => `${d}/`).join(", ")}`,
  check: (graph) => {
    const out: string[] = []
    for (const [f, targets] of graph) {
      if (!inside(f, [from])) continue
      for (const e of targets) if (inside(e.to, to)) out.push(`${f} imports ${e.to}`)
    }
    return out
  },
})

/** The rules `npm run typecheck` enforces. Add one-way rules here (forbidImports). */
export const RULES: ReadonlyArray<Rule> = [
  noCycles(["src", "workers"], { types: false }),
  noCycles(["src/session"], { types: true }),
  // Imports run one way: src ← test ← scripts and bench (which may use the tests' harness).
  forbidImports("src", ["test", "scripts", "bench"]),
  forbidImports("workers", ["test", "scripts", "bench"]),
  forbidImports("test", ["scripts", "bench"]),
]

/** Directories whose files make up the graph (rules may look at any of them). */
const SCANNED = ["src", "workers", "test", "scripts", "bench"]
const SKIP_DIRS = new Set(["node_modules", "dist", ".wrangler", "coverage"])
const SOURCE = /\.(ts|tsx|mts|cts)$/

const listFiles = (root: string, dir: string): File[] => {
  let names: string[]
  try {
    names = readdirSync(join(root, dir))
  } catch {
    return []
  }
  const out: File[] = []
  for (const name of names) {
    if (SKIP_DIRS.has(name)) continue
    const rel = `${dir}/${name}`
    if (statSync(join(root, rel)).isDirectory()) out.push(...listFiles(root, rel))
    else if (SOURCE.test(name) && !name.endsWith(".d.ts")) out.push(rel)
  }
  return out
}

/** The file a relative specifier names: as written, or with a TypeScript extension, or a folder's index. */
const resolveSpecifier = (root: string, from: File, spec: string, known: ReadonlySet<File>): File | undefined => {
  const base = relative(root, resolve(root, dirname(from), spec)).split(sep).join("/")
  const stem = base.replace(/\.(js|mjs|cjs)$/, "")
  for (const c of [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${base}/index.ts`]) if (known.has(c)) return c
  return undefined
}

/** Whether an import or re-export declaration brings nothing that exists at run time. */
const typeOnly = (d: ts.ImportDeclaration | ts.ExportDeclaration): boolean => {
  if (ts.isExportDeclaration(d)) {
    if (d.isTypeOnly) return true
    const c = d.exportClause
    return c !== undefined && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly)
  }
  const c = d.importClause
  if (c === undefined) return false // `import "./x.ts"`: run for its effects
  if (c.isTypeOnly) return true
  if (c.name !== undefined) return false
  const b = c.namedBindings
  return b !== undefined && ts.isNamedImports(b) && b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly)
}

/** Relative specifiers a file imports, with whether each import is type-only (a specifier imported both ways is not). */
const importsOf = (path: string, text: string): Map<string, boolean> => {
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, false)
  const found = new Map<string, boolean>()
  const add = (spec: string, typeOnlyEdge: boolean): void => {
    if (spec.startsWith(".")) found.set(spec, (found.get(spec) ?? true) && typeOnlyEdge)
  }
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier !== undefined && ts.isStringLiteral(n.moduleSpecifier))
      add(n.moduleSpecifier.text, typeOnly(n))
    else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] !== undefined && ts.isStringLiteral(n.arguments[0]))
      add(n.arguments[0].text, false)
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal))
      add(n.argument.literal.text, true)
    ts.forEachChild(n, visit)
  }
  visit(sf)
  return found
}

export const importGraph = (root: string): Graph => {
  const files = SCANNED.flatMap((d) => listFiles(root, d))
  const known = new Set(files)
  const graph = new Map<File, Edge[]>()
  for (const f of files) {
    const edges = new Map<File, boolean>()
    for (const [spec, typeOnlyEdge] of importsOf(f, readFileSync(join(root, f), "utf8"))) {
      const t = resolveSpecifier(root, f, spec, known)
      if (t !== undefined) edges.set(t, (edges.get(t) ?? true) && typeOnlyEdge)
    }
    graph.set(f, [...edges].sort(([a], [b]) => (a < b ? -1 : 1)).map(([to, typeOnlyEdge]) => ({ to, typeOnly: typeOnlyEdge })))
  }
  return graph
}

/** Tarjan's strongly connected components (recursive: import chains are far shallower than the stack). */
const stronglyConnected = (nodes: ReadonlyArray<File>, edges: (f: File) => File[]): File[][] => {
  const index = new Map<File, number>()
  const low = new Map<File, number>()
  const onStack = new Set<File>()
  const stack: File[] = []
  const out: File[][] = []
  let next = 0
  const visit = (v: File): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of edges(v)) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const scc: File[] = []
    let w: File
    do {
      w = stack.pop()!
      onStack.delete(w)
      scc.push(w)
    } while (w !== v)
    out.push(scc.sort())
  }
  for (const v of nodes) if (!index.has(v)) visit(v)
  return out
}

/** One concrete cycle inside a component, for the message: a shortest path from its first file back to itself. */
const cycleThrough = (scc: ReadonlyArray<File>, edges: (f: File) => File[]): File[] => {
  const members = new Set(scc)
  const start = scc[0]!
  const prev = new Map<File, File>()
  const queue: File[] = [start]
  while (queue.length > 0) {
    const v = queue.shift()!
    for (const w of edges(v)) {
      if (!members.has(w)) continue
      if (w === start) {
        const path = [start]
        for (let u: File | undefined = v; u !== undefined && u !== start; u = prev.get(u)) path.splice(1, 0, u)
        return [...path, start]
      }
      if (!prev.has(w)) {
        prev.set(w, v)
        queue.push(w)
      }
    }
  }
  return [...scc]
}

const main = (): void => {
  const { values } = parseArgs({ options: { root: { type: "string", default: "." } } })
  const root = resolve(values.root)
  const graph = importGraph(root)
  let failed = false
  for (const rule of RULES) {
    const problems = rule.check(graph)
    if (problems.length === 0) continue
    failed = true
    console.error(`import rule broken: ${rule.name}`)
    for (const p of problems) console.error(`  ${p}`)
  }
  if (failed) process.exit(1)
  console.log(`imports: ${RULES.length} rule(s) hold over ${graph.size} files`)
}

if (import.meta.url === `file://${process.argv[1]}`) main()
