// Captures golden vectors from the real Debian spice-vdagent 0.22.1: drives one session through the real-agent
// harness and writes every message both ways to test/golden/<name>.hex, each field commented, its source noted.
// Run: `node --import tsx scripts/capture-golden.ts [outDir]` (needs the Debian packages: bash infra/install-deps.sh).
import { execFileSync } from "node:child_process"
import { readFileSync, statSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Cap, ClipboardType, FileXferResult, MessageType, MessageType as T, Port, messageTypeName } from "../src/protocol/constants.ts"
import { buildCaps } from "../src/protocol/caps.ts"
import { encodeChunkedMessage } from "../src/protocol/chunker.ts"
import { type AgentMessage as Received, HostPeer, payload, u32At, words } from "../test/harness/host-peer.ts"
import type { AgentMessage } from "../src/protocol/messages.ts"
import { findBinary, startRealAgent } from "../test/harness/real-agent.ts"
import { annotate } from "./golden-annotate.ts"

interface Vector {
  readonly name: string
  readonly direction: "agent->host" | "host->agent"
  readonly summary: string
  readonly raw: Uint8Array
  readonly port: number
  readonly type: number
  readonly body: Uint8Array
  /** The decoded message in src/protocol/messages.ts's shape, written here from what was sent or checked, not decoded. */
  readonly expect: AgentMessage
  /** A sender quirk no correct encoder reproduces (golden `# encode: none`). */
  readonly quirk?: boolean
}

/** spice-gtk 0.39's client caps (spec §3), so the agent uses the selection prefix and grab serials. */
const CLIENT_CAPS = buildCaps([
  Cap.MouseState, Cap.MonitorsConfig, Cap.Reply, Cap.DisplayConfig, Cap.ClipboardByDemand, Cap.ClipboardSelection,
  Cap.MonitorsConfigPosition, Cap.FileXferDetailedErrors, Cap.ClipboardNoReleaseOnRegrab, Cap.ClipboardGrabSerial,
])[0]!

const check = (ok: boolean, what: string): void => {
  if (!ok) throw new Error(`capture: unexpected agent behaviour: ${what}`)
}

const main = async (): Promise<void> => {
  const outDir = resolve(process.argv[2] ?? "test/golden")
  const vectors: Vector[] = []
  const got = (name: string, summary: string, m: Received, expect: (m: Received) => AgentMessage): Received => {
    // 0.22.1's CLIPBOARD_RELEASE with a 1-byte body is the one agent message no encoder should reproduce.
    const quirk = m.type === T.ClipboardRelease && m.body.length === 1
    vectors.push({ name, direction: "agent->host", summary, raw: m.raw, port: m.port, type: m.type, body: m.body, expect: expect(m), quirk })
    return m
  }
  const agent = await startRealAgent()
  try {
    const peer = await HostPeer.connect(agent.hostSocketPath)
    const sent = async (name: string, summary: string, expect: AgentMessage, body: Uint8Array, port: number = Port.Client): Promise<void> => {
      const type = MessageType[expect._tag]
      const raw = encodeChunkedMessage(port, type, body)
      await peer.write(raw)
      vectors.push({ name, direction: "host->agent", summary, raw, port, type, body, expect })
    }

    // Expected messages for agent output are read here with plain u32 reads, independently of src/protocol's codecs.
    const announced = (m: Received): AgentMessage => ({ _tag: "AnnounceCapabilities", request: u32At(m.body, 0) === 1, caps: words(m.body).slice(1) })
    const hello = got("agent-announce-request", "the daemon's first message after opening its port: ANNOUNCE_CAPABILITIES(request=1)", await peer.expect(T.AnnounceCapabilities), announced)
    check(u32At(hello.body, 0) === 1, "first announce has request=1")
    await sent("client-announce-request", "client ANNOUNCE_CAPABILITIES(request=1) with spice-gtk 0.39's caps", { _tag: "AnnounceCapabilities", request: true, caps: [CLIENT_CAPS] }, payload.announce(1, CLIENT_CAPS))
    got("agent-announce-reply", "the agent's answer to a client announce: ANNOUNCE_CAPABILITIES(request=0)", await peer.expect(T.AnnounceCapabilities), announced)

    const monitors: AgentMessage = { _tag: "MonitorsConfig", flags: 0, monitors: [{ height: 768, width: 1024, depth: 32, x: 0, y: 0 }] }
    await sent("client-monitors-config", "MONITORS_CONFIG: one 1024x768 monitor, flags 0 (no physical-size array: 0.22.1 drops those)", monitors, payload.monitorsConfig(1024, 768))
    got("agent-reply-monitors-config", "REPLY(MONITORS_CONFIG, SUCCESS) on the port the config came on", await peer.expect(T.Reply), (m) => ({ _tag: "Reply", type: u32At(m.body, 0), error: u32At(m.body, 4) }))

    const guestText = "golden: guest clipboard text"
    await agent.setClipboard(guestText)
    const grabbed = (m: Received): AgentMessage => ({ _tag: "ClipboardGrab", selection: m.body[0]!, serial: u32At(m.body, 4), types: words(m.body).slice(2) })
    got("agent-clipboard-grab", "CLIPBOARD_GRAB after `xclip -i` in the guest: selection prefix and serial 0 (reset by our announce)", await peer.expect(T.ClipboardGrab), grabbed)
    await sent("client-clipboard-request", "client CLIPBOARD_REQUEST(CLIPBOARD, UTF8_TEXT)", { _tag: "ClipboardRequest", selection: 0, dataType: ClipboardType.Utf8Text }, payload.request(0, ClipboardType.Utf8Text))
    const data = got("agent-clipboard-data", "the agent's CLIPBOARD answer with the guest text", await peer.expect(T.Clipboard), (m) => ({ _tag: "Clipboard", selection: m.body[0]!, dataType: u32At(m.body, 4), data: m.body.subarray(8) }))
    check(new TextDecoder().decode(data.body.subarray(8)) === guestText, "guest clipboard text")

    const hostText = new TextEncoder().encode("golden: client clipboard text")
    const sessionMark = agent.logs.session.mark()
    await sent("client-clipboard-grab", "client CLIPBOARD_GRAB(CLIPBOARD, serial 0, [UTF8_TEXT]); 0.22.1 accepts its counter - 1 on a tie", { _tag: "ClipboardGrab", selection: 0, serial: 0, types: [ClipboardType.Utf8Text] }, payload.grab(0, 0, [ClipboardType.Utf8Text]))
    await agent.logs.session.waitFor(/received clipboard grab/, { from: sessionMark })
    const read = agent.getClipboard()
    got("agent-clipboard-request", "the agent's CLIPBOARD_REQUEST when a guest app (`xclip -o`) pastes the client's clipboard", await peer.expect(T.ClipboardRequest), (m) => ({ _tag: "ClipboardRequest", selection: m.body[0]!, dataType: u32At(m.body, 4) }))
    await sent("client-clipboard-data", "client CLIPBOARD answer with the text", { _tag: "Clipboard", selection: 0, dataType: ClipboardType.Utf8Text, data: hostText }, payload.clipboard(0, ClipboardType.Utf8Text, hostText))
    check(Buffer.from(await read).equals(Buffer.from(hostText)), "xclip -o printed the client text")

    // 2100 file bytes: the DATA message spans two host→guest chunks (2048 + 84).
    const file = new TextEncoder().encode("golden file line 0123456789\n".repeat(75))
    const id = 1
    const status = (m: Received): AgentMessage => ({ _tag: "FileXferStatus", id: u32At(m.body, 0), result: u32At(m.body, 4) })
    await sent("client-file-xfer-start", "FILE_XFER_START id 1 with the key file spice-gtk sends", { _tag: "FileXferStart", id, name: "golden.txt", size: file.length }, payload.fileXferStart(id, "golden.txt", file.length))
    const can = got("agent-file-xfer-status-can-send-data", "FILE_XFER_STATUS(CAN_SEND_DATA)", await peer.expect(T.FileXferStatus), status)
    check(u32At(can.body, 4) === FileXferResult.CanSendData, "CAN_SEND_DATA")
    await sent("client-file-xfer-data", "FILE_XFER_DATA with all 2100 file bytes: one message in two chunks (2048 + 84)", { _tag: "FileXferData", id, data: file }, payload.fileXferData(id, file))
    const success = got("agent-file-xfer-status-success", "FILE_XFER_STATUS(SUCCESS) once the declared size has arrived", await peer.expect(T.FileXferStatus), status)
    check(u32At(success.body, 4) === FileXferResult.Success, "SUCCESS")
    check(Buffer.from(readFileSync(join(agent.xferDir, "golden.txt"))).equals(Buffer.from(file)), "the file landed byte-exact")

    const uinputBefore = statSync(agent.uinputPath).size
    await sent("client-mouse-state-server-port", "MOUSE_STATE(100, 200, no buttons, display 0) on the SERVER port, as spice-server sends it", { _tag: "MouseState", x: 100, y: 200, buttons: 0, displayId: 0 }, new Uint8Array([100, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 0]), Port.Server)
    const disconnectMark = agent.logs.daemon.mark()
    await sent("client-disconnected", "CLIENT_DISCONNECTED (empty) on the SERVER port, what spice-server sends when the last client leaves", { _tag: "ClientDisconnected" }, new Uint8Array(0), Port.Server)
    await agent.logs.daemon.waitFor(/sent client disconnected/, { from: disconnectMark })
    // The fake uinput device got the pointer events (24-byte input_event records) by now: the daemon is sequential.
    check(statSync(agent.uinputPath).size > uinputBefore, "MOUSE_STATE drove the fake uinput device")
    // Then a new client arrives, as after a real reconnect.
    await peer.send(T.AnnounceCapabilities, payload.announce(1, CLIENT_CAPS))
    await peer.expect(T.AnnounceCapabilities, { where: (m) => u32At(m.body, 0) === 0 })

    await agent.setClipboard("golden: owned by the guest at shutdown")
    await peer.expect(T.ClipboardGrab)
    await agent.killSession()
    got("agent-clipboard-release-1byte", "CLIPBOARD_RELEASE with a 1-byte body, sent when the session agent goes away while the guest owns the clipboard (0.22.1 quirk)", await peer.expect(T.ClipboardRelease), (m) => {
      check(m.body.length === 1, "the release body is 1 byte")
      return { _tag: "ClipboardRelease", selection: m.body[0]! }
    })
    await peer.close()
    check(agent.syncErrors().length === 0, `no sync errors in the daemon log: ${agent.syncErrors().join("; ")}`)
  } finally {
    await agent.stop()
  }
  writeVectors(outDir, vectors)
}

const source = (): string => {
  let version = "unknown"
  try {
    version = execFileSync("dpkg-query", ["-W", "-f=${Version}", "spice-vdagent"], { encoding: "utf8" })
  } catch {
    // not a Debian system: the daemon's own version line below still says which release ran
  }
  const help = execFileSync(findBinary("spice-vdagentd") ?? "spice-vdagentd", ["-h"], { encoding: "utf8" })
  const upstream = /version (\S+)/.exec(help)?.[1] ?? "unknown"
  return `spice-vdagent ${upstream} (Debian package ${version}), Xvfb + emulated chardev (test/harness/real-agent.ts)`
}

const writeVectors = (outDir: string, vectors: ReadonlyArray<Vector>): void => {
  const src = source()
  const date = new Date().toISOString().slice(0, 10)
  for (const v of vectors) {
    const lines = [
      `# ${v.name}: ${v.summary}.`,
      `# source: ${src}; captured ${date} with \`node --import tsx scripts/capture-golden.ts\`${v.direction === "host->agent" ? "; bytes sent by the capture script, accepted by the agent (its answer followed)" : ""}`,
      `# direction: ${v.direction}`,
      ...(v.quirk ? ["# encode: none"] : []),
      `# expect: ${JSON.stringify({ port: v.port, message: v.expect }, (_k, x: unknown) => (x instanceof Uint8Array ? { hex: Buffer.from(x).toString("hex") } : x))}`,
      `# ${messageTypeName(v.type)} (type ${v.type}), ${v.body.length}-byte payload, ${v.raw.length} bytes on the wire`,
      ...annotate(v.raw, v.type, v.body, true),
    ]
    writeFileSync(join(outDir, `captured-${v.name}.hex`), `${lines.join("\n")}\n`)
  }
  process.stdout.write(`wrote ${vectors.length} vectors to ${outDir}\n`)
}

await main()
