// Linux /proc readings for load tests: the workerd process serving the local worker (a descendant of this process),
// its resident memory and its CPU time.
import { readFileSync, readdirSync } from "node:fs"

const CLK_TCK = 100

const stat = (pid: number): { ppid: number; comm: string; cpuMs: number } | undefined => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8")
    const close = s.lastIndexOf(")")
    const comm = s.slice(s.indexOf("(") + 1, close)
    const f = s.slice(close + 2).split(" ")
    return { ppid: Number(f[1]), comm, cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK }
  } catch {
    return undefined
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

export const rssBytes = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m === null ? 0 : Number(m[1]) * 1024
}

export const cpuMs = (pid: number): number => stat(pid)?.cpuMs ?? 0

/** The single workerd process this Node process started (Miniflare spawns one). */
export const workerdPid = (): number => {
  const pids = descendants(process.pid, "workerd")
  if (pids.length !== 1) throw new Error(`expected one workerd below pid ${process.pid}, found ${pids.length}`)
  return pids[0]!
}
