// Puts the agent simulator behind the emulated QEMU chardev (chardev.ts, the same one the real agent runs behind): the
// simulator opens the guest end as spice-vdagentd opens its virtio port, and reopens it when the chardev ends it (its
// host left); a bridge connects to the host end, with QEMU's rules (one host at a time, guest bytes wait for a host).
// Files sent to the guest land in a folder on disk. `npm start` runs it when the real spice-vdagent is not installed.
import { EventEmitter } from "node:events"
import { mkdir, mkdtemp, open, rm, appendFile } from "node:fs/promises"
import { type Socket, createConnection } from "node:net"
import { tmpdir } from "node:os"
import { extname, join } from "node:path"
import { AgentSim, type FileSink, type SimEvent } from "./agent-sim.ts"
import { EmulatedChardev } from "./chardev.ts"

export interface AgentSimHandle {
  readonly runDir: string
  /** Connect here as QEMU's chardev peer (the bridge's side). */
  readonly hostSocketPath: string
  /** The emulated chardev between the simulator and the host (its events: guest-open, guest-close, to-guest). */
  readonly chardev: EmulatedChardev
  /** Where file transfers land. */
  readonly xferDir: string
  readonly sim: AgentSim
  readonly events: EventEmitter<{ event: [SimEvent] }>
  /** A guest app copies text (the agent grabs for the client). */
  setClipboard(text: string): void
  /** A guest app pastes text (from the client when it owns the clipboard). */
  getClipboard(): Promise<string | undefined>
  stop(): Promise<void>
}

/** How soon the simulated daemon reopens its port after the chardev ended it (spice-vdagentd retries at once). */
const REOPEN_MS = 10

/** Creates files the way the real agent does: the name as given, else "name (1).ext", "name (2).ext", … */
const folderSink = (dir: string): FileSink => ({
  create: async (name) => {
    const ext = extname(name)
    const stem = name.slice(0, name.length - ext.length)
    for (let i = 0; i < 1000; i++) {
      const path = join(dir, i === 0 ? name : `${stem} (${i})${ext}`)
      try {
        await (await open(path, "wx")).close()
        return path
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err
      }
    }
    throw new Error(`no free name for ${name}`)
  },
  append: (path, data) => appendFile(path, data),
  remove: (path) => rm(path, { force: true }),
})

export const startAgentSim = async (opts: { readonly runDir?: string; readonly xferDir?: string } = {}): Promise<AgentSimHandle> => {
  const runDir = opts.runDir ?? (await mkdtemp(join(tmpdir(), "vdrelay-agent-sim-")))
  const xferDir = opts.xferDir ?? join(runDir, "xfer")
  await mkdir(xferDir, { recursive: true })
  const hostSocketPath = join(runDir, "chardev.sock")
  const events = new EventEmitter<{ event: [SimEvent] }>()
  const chardev = await EmulatedChardev.listen({ guestPath: join(runDir, "vport.sock"), hostPath: hostSocketPath })
  /** The simulated daemon's open port (the guest end of the chardev), and whole messages written while it reopens. */
  let port: Socket | undefined
  let pending: Uint8Array[] = []
  let stopping = false

  const sim = new AgentSim({
    write: (bytes) => (port !== undefined ? void port.write(bytes) : void pending.push(bytes)),
    files: folderSink(xferDir),
    event: (e) => events.emit("event", e),
  })

  const openPort = (): void => {
    const s = createConnection(chardev.guestPath)
    s.on("error", () => {})
    s.on("connect", () => {
      port = s
      s.on("data", (d: Buffer) => sim.receive(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)))
      // The port-open announce (first open only) and anything written meanwhile wait in the chardev for a host.
      sim.hostConnected()
      for (const b of pending.splice(0)) s.write(b)
    })
    s.on("close", () => {
      if (port === s) {
        port = undefined
        // The chardev ended the port (its host left): the daemon's parsers and transfers are gone, it reopens.
        sim.hostDisconnected()
      }
      if (!stopping) setTimeout(openPort, REOPEN_MS)
    })
  }
  const opened = chardev.waitForGuest(0)
  openPort()
  await opened

  const utf8 = new TextEncoder(), utf8Decode = new TextDecoder()
  return {
    runDir,
    hostSocketPath,
    chardev,
    xferDir,
    sim,
    events,
    setClipboard: (text) => sim.setGuestClipboard(utf8.encode(text)),
    getClipboard: async () => {
      const data = await sim.getGuestClipboard()
      return data === undefined ? undefined : utf8Decode.decode(data)
    },
    stop: async () => {
      stopping = true
      port?.destroy()
      await chardev.close()
      if (opts.runDir === undefined) await rm(runDir, { recursive: true, force: true })
    },
  }
}
