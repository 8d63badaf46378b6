// The classic console relay as a baseline: Debian's `websockify` (Python, no parsing at all) between a WebSocket and
// a UNIX socket, started on a free loopback port in its own process group.
import { type AddressInfo, connect, createServer } from "node:net"
import { findBinary } from "../../test/harness/real-agent.ts"
import { type Managed, run, spawnGroup } from "../../test/harness/processes.ts"
import { sleep } from "./stats.ts"

export interface Websockify {
  readonly url: string
  readonly version: string
  /** The websockify process (for its CPU counters). */
  readonly pid: number
  stop(): Promise<void>
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port })
    s.once("connect", () => (s.destroy(), resolve(true)))
    s.once("error", () => resolve(false))
  })

/** Starts websockify in front of `unixTarget`; fails with the package name when it is not installed. */
export const startWebsockify = async (unixTarget: string): Promise<Websockify> => {
  const bin = findBinary("websockify")
  if (bin === undefined) throw new Error("websockify not found: install the Debian package 'websockify' (infra/install-deps.sh)")
  const port = await freePort()
  const proc: Managed = spawnGroup("websockify", bin, [`--unix-target=${unixTarget}`, `127.0.0.1:${port}`])
  const deadline = Date.now() + 10_000
  while (!(await accepts(port))) {
    if (!proc.running() || Date.now() > deadline) {
      await proc.stop()
      throw new Error(`websockify did not listen on ${port}:\n${proc.log.text}`)
    }
    await sleep(50)
  }
  const version = await run("dpkg-query", ["-W", "-f=${Version}", "websockify"]).then((r) => r.stdout.toString(), () => "unknown")
  return { url: `ws://127.0.0.1:${port}/`, version, pid: proc.pid, stop: () => proc.stop(500) }
}
