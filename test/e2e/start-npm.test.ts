// `npm start` as a user runs it: a real child process that prints progress, then `vdrelay ready: URL`; the URL opens
// a working session (checked with the Node SDK: resolution reply, a file in the agent's folder, clipboard); Ctrl-C
// stops every process it started; a busy port fails with the cause and the fix.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { readFile } from "node:fs/promises"
import { createServer, type Server } from "node:net"
import { join, resolve } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { connect } from "../../src/client/index.ts"
import { realAgentAvailable } from "../harness/real-agent.ts"

const ROOT = resolve(import.meta.dirname, "../..")

interface Started {
  readonly child: ChildProcess
  readonly lines: string[]
  readonly stderr: () => string
  /** npm's own exit: after Ctrl-C npm re-raises SIGINT once its script is done, as in a terminal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  line(pattern: RegExp): Promise<RegExpExecArray>
}

let running: Started | undefined
afterEach(() => {
  if (running !== undefined && running.child.exitCode === null && running.child.signalCode === null) process.kill(-running.child.pid!, "SIGKILL")
  running = undefined
})

/** Runs `npm start -- …` in its own process group, as a terminal would (Ctrl-C goes to the whole group). */
const npmStart = (args: string[]): Started => {
  const child = spawn("npm", ["start", "--silent", "--", ...args], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" } })
  const lines: string[] = []
  let err = ""
  const waiters: Array<() => void> = []
  let buf = ""
  // stdout ends when npm *and* the script have exited (the script may still be cleaning up after npm is gone).
  let ended = false
  child.stdout!.on("end", () => {
    ended = true
    waiters.splice(0).forEach((w) => w())
  })
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    buf += s
    const parts = buf.split("\n")
    buf = parts.pop()!
    lines.push(...parts)
    for (const w of waiters.splice(0)) w()
  })
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => (r({ code, signal }), waiters.splice(0).forEach((w) => w()))),
  )
  const started: Started = {
    child,
    lines,
    stderr: () => err,
    exited,
    line: async (pattern) => {
      for (;;) {
        for (const l of lines) {
          const m = pattern.exec(l)
          if (m !== null) return m
        }
        if (ended) throw new Error(`npm start ended before printing ${pattern}:\n${lines.join("\n")}\n${err}`)
        await new Promise<void>((r) => waiters.push(r))
      }
    },
  }
  running = started
  return started
}

/** Every process in the session of `pid`'s group and below it (workerd, the bridge, the agent's processes). */
const descendants = (root: number): number[] => {
  const table = execFileSync("ps", ["-e", "-o", "pid=,ppid="], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number])
  const out: number[] = []
  const walk = (p: number): void => {
    for (const [pid, ppid] of table) if (ppid === p) (out.push(pid), walk(pid))
  }
  walk(root)
  return out
}
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("npm start", () => {
  it("prints a ready URL with the token in the fragment that opens a working session, and Ctrl-C stops everything", async () => {
    const s = npmStart(["--port", "0"])
    const [, url] = await s.line(/^vdrelay ready: (\S+)$/)
    const agentLine = (await s.line(/^vdrelay: agent: (.*)$/))[1]!
    // In CI the real agent must be the one running.
    if (realAgentAvailable() || process.env.CI === "true") expect(agentLine).toMatch(/^real spice-vdagent under Xvfb/)
    else expect(agentLine).toMatch(/^built-in simulator, because .* not installed; .*install-deps\.sh/)
    const xferDir = (await s.line(/files sent from the console land in (\S+)$/))[1]!

    const u = new URL(url!)
    expect(u.search).toBe("")
    const token = new URLSearchParams(u.hash.slice(1)).get("token")!
    expect(token.split(".")).toHaveLength(3)
    const page = await fetch(`${u.origin}${u.pathname}`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain("vdrelay console")

    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { vm: string; role: string }
    expect(claims.role).toBe("controller")
    const session = await connect({ url: `${u.origin.replace("http", "ws")}/v1/vms/${claims.vm}/console`, token })
    expect(session.agent.connected).toBe(true)
    await session.setResolution(1024, 768)
    const file = Buffer.from("hello from npm start\n".repeat(5000))
    const t = session.sendFile({ name: "start-check.txt", data: new Uint8Array(file) })
    await t.done
    expect(await readFile(join(xferDir, "start-check.txt"))).toEqual(file)
    await session.close()

    const pids = descendants(s.child.pid!)
    expect(pids.length).toBeGreaterThan(2)
    process.kill(-s.child.pid!, "SIGINT")
    await s.exited
    // The script's own clean exit says so on its last line.
    await s.line(/^vdrelay: stopped$/)
    const left = pids.filter(alive).map((pid) => `${pid} ${execFileSync("ps", ["-o", "args=", "-p", String(pid)], { encoding: "utf8" }).trim()}`)
    expect(left).toEqual([])
    await expect(fetch(u.origin)).rejects.toThrow()
  })

  it("with the simulator, a console's copy reaches the simulated guest and the line says so", async () => {
    const s = npmStart(["--port", "0", "--agent", "sim"])
    const [, url] = await s.line(/^vdrelay ready: (\S+)$/)
    await s.line(/^vdrelay: agent: built-in simulator \(--agent sim\)$/)
    const u = new URL(url!)
    const token = new URLSearchParams(u.hash.slice(1)).get("token")!
    const session = await connect({ url: `${u.origin.replace("http", "ws")}/v1/vms/demo/console`, token })
    await session.setClipboardText("copied from a console")
    await s.line(/^vdrelay: guest clipboard ← console: "copied from a console"$/)
    await session.close()
    process.kill(-s.child.pid!, "SIGINT")
    await s.exited
    await s.line(/^vdrelay: stopped$/)
  })

  it("fails on a busy port naming the cause and the fix", async () => {
    const server: Server = createServer()
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
    const { port } = server.address() as { port: number }
    try {
      const s = npmStart(["--port", String(port), "--agent", "sim"])
      expect((await s.exited).code).toBe(1)
      expect(s.stderr()).toContain(`port ${port} on 127.0.0.1 is in use`)
      expect(s.stderr()).toMatch(/fix: run `npm start -- --port \d+`, or `--port 0`/)
    } finally {
      server.close()
    }
  })
})
