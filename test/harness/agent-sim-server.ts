// Puts the agent simulator behind a UNIX socket that behaves like QEMU's `-chardev socket,server=on` for a bridge:
// one host connection at a time (a second waits until the first leaves), guest bytes held while no host is connected,
// and a transfer folder on disk. `npm start` runs it when the real spice-vdagent is not installed.
import { EventEmitter } from "node:events"
import { mkdir, mkdtemp, open, rm, appendFile } from "node:fs/promises"
import { type Socket, createServer } from "node:net"
import { tmpdir } from "node:os"
import { extname, join } from "node:path"
import { AgentSim, type FileSink, type SimEvent } from "./agent-sim.ts"

export interface AgentSimHandle {
  readonly runDir: string
  /** Connect here as QEMU's chardev peer (the bridge's side). */
  readonly hostSocketPath: string
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

/** Guest bytes kept while no host is connected; past this the guest "blocks" (we drop and log). */
const MAX_HELD_BYTES = 4 * 1024 * 1024

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
  let host: Socket | undefined
  const waiting: Socket[] = []
  let held: Uint8Array[] = []
  let heldBytes = 0

  const sim = new AgentSim({
    write: (bytes) => {
      if (host !== undefined) return void host.write(bytes)
      if (heldBytes + bytes.length > MAX_HELD_BYTES) return events.emit("event", { _tag: "Log", line: "no host connected: guest output dropped" })
      held.push(bytes)
      heldBytes += bytes.length
    },
    files: folderSink(xferDir),
    event: (e) => events.emit("event", e),
  })

  const activate = (s: Socket): void => {
    host = s
    s.on("data", (d: Buffer) => sim.receive(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)))
    s.resume()
    for (const b of held) s.write(b)
    held = []
    heldBytes = 0
    sim.hostConnected()
  }

  const server = createServer((s) => {
    s.on("error", () => {})
    s.on("close", () => {
      const at = waiting.indexOf(s)
      if (at !== -1) return void waiting.splice(at, 1)
      if (host !== s) return
      host = undefined
      sim.hostDisconnected()
      const next = waiting.shift()
      if (next !== undefined) activate(next)
    })
    if (host === undefined) activate(s)
    else {
      s.pause()
      waiting.push(s)
    }
  })
  await rm(hostSocketPath, { force: true })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(hostSocketPath, () => resolve())
  })

  const utf8 = new TextEncoder(), utf8Decode = new TextDecoder()
  return {
    runDir,
    hostSocketPath,
    xferDir,
    sim,
    events,
    setClipboard: (text) => sim.setGuestClipboard(utf8.encode(text)),
    getClipboard: async () => {
      const data = await sim.getGuestClipboard()
      return data === undefined ? undefined : utf8Decode.decode(data)
    },
    stop: async () => {
      for (const s of [host, ...waiting]) s?.destroy()
      await new Promise<void>((r) => server.close(() => r()))
      if (opts.runDir === undefined) await rm(runDir, { recursive: true, force: true })
    },
  }
}
