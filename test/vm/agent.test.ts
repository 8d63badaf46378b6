// The real spice-vdagentd + spice-vdagent 0.22.1 inside a real QEMU guest, spoken to in the vdagent protocol directly on
// the VM's agent chardev socket (as the bridge would): caps, clipboard both ways (text and PNG) through the guest's X
// server, MONITORS_CONFIG really resizing the guest's screen, a file transfer landing byte-exact in the guest's folder,
// and MOUSE_STATE reaching the guest's uinput tablet. One VM for the file.
import { createHash, randomBytes } from "node:crypto"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { ClipboardType, FileXferResult, MessageType as T, Port, ReplyError } from "../../src/protocol/constants.ts"
import { encodeMouseState } from "../../src/protocol/codec-display.ts"
import { type HostPeer, payload, u32At, words } from "../harness/host-peer.ts"
import { AGENT_CAPS, connectAgent, handshake, makePng } from "./fixtures.ts"
import { type Vm, startVm, vmTestsEnabled } from "./index.ts"

const enc = new TextEncoder()
const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex")

/** Polls `probe` until it returns a value `done` accepts; fails with the last value after `timeoutMs`. */
const until = async <A>(probe: () => Promise<A>, done: (a: A) => boolean, timeoutMs = 30_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const a = await probe()
    if (done(a)) return a
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last: ${JSON.stringify(a)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe.skipIf(!vmTestsEnabled())("the real agent in a real QEMU guest", () => {
  let vm: Vm
  let host: HostPeer
  let daemonMark = 0

  /** Lines of the session agent's log matching `pattern`. */
  const sessionLines = async (pattern: RegExp): Promise<number> => (await vm.guest.agentLogs()).session.split("\n").filter((l) => pattern.test(l)).length

  beforeAll(async () => {
    vm = await startVm()
    host = await connectAgent(vm.agentSocket)
    console.log(`[vm] ${vm.accel}: QEMU start → agent port open ${vm.bootMs} ms`)
  })

  afterEach(async () => {
    // Every exchange must leave the daemon's parsers in step.
    expect(await vm.guest.syncErrors(daemonMark)).toEqual([])
    daemonMark = await vm.guest.daemonLogMark()
  })

  afterAll(async () => {
    await host?.close()
    await vm?.stop()
  })

  it("announces caps 0x00038de7 with request=1 to the first host and answers a client announce", async () => {
    const hello = await host.expect(T.AnnounceCapabilities, { timeoutMs: 30_000 })
    expect(hello.port).toBe(Port.Client)
    expect([u32At(hello.body, 0), u32At(hello.body, 4)]).toEqual([1, AGENT_CAPS])
    expect(await handshake(host)).toBe(AGENT_CAPS)
  })

  it("carries text from the guest clipboard to the host byte-exact", async () => {
    const text = `guest clipboard ${randomBytes(6).toString("hex")} äöü ✓`
    await vm.guest.setClipboard(text)
    const grab = await host.expect(T.ClipboardGrab)
    expect(u32At(grab.body, 0)).toBe(0)
    expect(words(grab.body).slice(2)).toEqual([ClipboardType.Utf8Text])
    await host.send(T.ClipboardRequest, payload.request(0, ClipboardType.Utf8Text))
    const data = await host.expect(T.Clipboard)
    expect([u32At(data.body, 0), u32At(data.body, 4)]).toEqual([0, ClipboardType.Utf8Text])
    expect(Buffer.from(data.body.subarray(8)).toString("utf8")).toBe(text)
  })

  it("carries text from the host clipboard to the guest's X selection byte-exact", async () => {
    const text = `host clipboard ${randomBytes(6).toString("hex")} ✓ 日本`
    const grabs = await sessionLines(/received clipboard grab/)
    await host.send(T.ClipboardGrab, payload.grab(0, 1, [ClipboardType.Utf8Text]))
    // xclip must ask only once the agent owns the selection, or it reads the previous owner.
    await until(() => sessionLines(/received clipboard grab/), (n) => n > grabs)
    const read = vm.guest.getClipboard()
    const request = await host.expect(T.ClipboardRequest)
    expect([u32At(request.body, 0), u32At(request.body, 4)]).toEqual([0, ClipboardType.Utf8Text])
    await host.send(T.Clipboard, payload.clipboard(0, ClipboardType.Utf8Text, enc.encode(text)))
    expect((await read).toString("utf8")).toBe(text)
  })

  it("carries a PNG from the guest clipboard to the host", async () => {
    const png = makePng(40, 30)
    await vm.guest.setClipboard(png, { mime: "image/png" })
    const grab = await host.expect(T.ClipboardGrab)
    expect(words(grab.body).slice(2)).toContain(ClipboardType.ImagePng)
    await host.send(T.ClipboardRequest, payload.request(0, ClipboardType.ImagePng))
    const data = await host.expect(T.Clipboard)
    expect([u32At(data.body, 0), u32At(data.body, 4)]).toEqual([0, ClipboardType.ImagePng])
    expect(sha256(data.body.subarray(8))).toBe(sha256(png))
  })

  it("carries a PNG from the host clipboard to the guest's X selection", async () => {
    const png = makePng(32, 24)
    const grabs = await sessionLines(/received clipboard grab/)
    await host.send(T.ClipboardGrab, payload.grab(0, 2, [ClipboardType.ImagePng]))
    await until(() => sessionLines(/received clipboard grab/), (n) => n > grabs)
    const read = vm.guest.getClipboard({ mime: "image/png" })
    const request = await host.expect(T.ClipboardRequest)
    expect([u32At(request.body, 0), u32At(request.body, 4)]).toEqual([0, ClipboardType.ImagePng])
    await host.send(T.Clipboard, payload.clipboard(0, ClipboardType.ImagePng, png))
    expect(sha256(await read)).toBe(sha256(png))
  })

  it("answers MONITORS_CONFIG with REPLY success and really resizes the guest's X screen", async () => {
    for (const [width, height] of [[800, 600], [1024, 768]] as const) {
      await host.send(T.MonitorsConfig, payload.monitorsConfig(width, height))
      const reply = await host.expect(T.Reply)
      expect([u32At(reply.body, 0), u32At(reply.body, 4)]).toEqual([T.MonitorsConfig, ReplyError.Success])
      expect(await until(() => vm.guest.screenSize(), (s) => s.width === width && s.height === height)).toEqual({ width, height })
    }
  })

  it("lands a multi-block file transfer byte-exact in the guest's transfer folder", async () => {
    const file = randomBytes(300_000)
    const name = `xfer-${randomBytes(4).toString("hex")}.bin`
    const id = 7
    await host.send(T.FileXferStart, payload.fileXferStart(id, name, file.length))
    const ready = await host.expect(T.FileXferStatus)
    expect([u32At(ready.body, 0), u32At(ready.body, 4)]).toEqual([id, FileXferResult.CanSendData])
    // spice-gtk's blocks: ≤ 65536 file bytes per DATA message, each chunked to ≤ 2048 on the wire.
    for (let at = 0; at < file.length; at += 65536) await host.send(T.FileXferData, payload.fileXferData(id, file.subarray(at, at + 65536)))
    const done = await host.expect(T.FileXferStatus, { timeoutMs: 60_000 })
    expect([u32At(done.body, 0), u32At(done.body, 4)]).toEqual([id, FileXferResult.Success])
    expect((await vm.guest.files()).find((f) => f.name === name)).toEqual({ name, size: file.length, sha256: sha256(file) })
  })

  it("feeds MOUSE_STATE from the server port into the guest's uinput tablet", async () => {
    // The daemon creates its tablet on /dev/uinput; evdev exposes it as /dev/input/eventN.
    const dev = (
      await vm.guest.sh(`for d in /sys/class/input/event*; do [ "$(cat $d/device/name)" = "spice vdagent tablet" ] && echo /dev/input/\${d##*/}; done; true`)
    )
      .toString()
      .trim()
    expect(dev).toMatch(/^\/dev\/input\/event\d+$/)
    // Read one input_event (24 bytes) while the host keeps moving the pointer; the loop ends when the read does.
    const read = vm.guest.sh(`dd if=${dev} bs=24 count=1 2>/dev/null | wc -c`)
    let settled = false
    void read.finally(() => (settled = true)).catch(() => {})
    for (let i = 0; !settled && i < 300; i++) {
      const state = encodeMouseState({ _tag: "MouseState", x: 100 + (i % 50), y: 200, buttons: 0, displayId: 0 })
      if (state._tag !== "Ok") throw new Error("encodeMouseState")
      await host.send(T.MouseState, state.value, Port.Server)
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(Number((await read).toString().trim())).toBe(24)
  })
})
