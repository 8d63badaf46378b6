// Linux /proc readings for load tests and benchmarks: the workerd process serving a local worker (a descendant of the
// process that started it), resident memory, and CPU time split into user and system.
import { readFileSync, readdirSync } from "node:fs"

/** USER_HZ: /proc counts CPU time in ticks of 10 ms on Linux. */
const TICK_MS = 10

interface Stat {
  readonly ppid: number
  readonly comm: string
  readonly userMs: number
  readonly systemMs: number
}

const stat = (pid: number): Stat | undefined => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8")
    // comm may hold spaces and parentheses: the fields start after the last ")".
    const close = s.lastIndexOf(")")
    const f = s.slice(close + 2).split(" ")
    return { ppid: Number(f[1]), comm: s.slice(s.indexOf("(") + 1, close), userMs: Number(f[11]) * TICK_MS, systemMs: Number(f[12]) * TICK_MS }
  } catch {
    return undefined // gone while we looked
  }
}

/** PIDs of processes named `name` below `root` in the process tree. */
export const descendants = (root: number, name: string): number[] => {
  const parent = new Map<number, number>()
  const names = new Map<number, string>()
  for (const e of readdirSync("/proc")) {
    const pid = Number(e)
    if (!Number.isInteger(pid)) continue
    const s = stat(pid)
    if (s === undefined) continue
    parent.set(pid, s.ppid)
    names.set(pid, s.comm)
  }
  const under = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === root) return true
    return false
  }
  return [...names].filter(([pid, comm]) => comm === name && under(pid)).map(([pid]) => pid)
}

/** Resident memory of `pid`, bytes (0 once it is gone). */
export const rssBytes = (pid: number): number => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m === null ? 0 : Number(m[1]) * 1024
  } catch {
    return 0
  }
}

/** User and system CPU time of `pid`, ms. */
export const cpuSplitMs = (pid: number): { readonly userMs: number; readonly systemMs: number } => {
  const s = stat(pid)
  return { userMs: s?.userMs ?? 0, systemMs: s?.systemMs ?? 0 }
}

export const cpuMs = (pid: number): number => {
  const s = cpuSplitMs(pid)
  return s.userMs + s.systemMs
}

/** The single workerd process below `root` (default: this process; Miniflare spawns one per worker). */
export const workerdPid = (root = process.pid): number => {
  const pids = descendants(root, "workerd")
  if (pids.length !== 1) throw new Error(`expected one workerd below pid ${root}, found ${pids.length}`)
  return pids[0]!
}
