// What must hold after every fault (docs/reliability.md): the chain is healthy again, a clipboard round trip both ways
// and a small file transfer succeed byte for byte, and the real agent's log shows no loss of sync.
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import type { Console, Rig } from "./rig.ts"
import { until } from "./rig.ts"
import { withTimeout } from "../with-timeout.ts"

export { withTimeout }

/** The console that holds control right now (a takeover may have moved it). */
export const controller = (rig: Rig): Console => (rig.b.session.role === "controller" ? rig.b : rig.a)

/** Tunnel synced, chardev and guest port open, both consoles open and the controller seeing the agent with its caps. */
export const healthy = async (rig: Rig, timeoutMs = 90_000): Promise<void> => {
  await until(async () => (await rig.metric("vdrelay_bridge_tunnel_up")) === 1, "bridge tunnel up", timeoutMs)
  await until(async () => (await rig.metric("vdrelay_bridge_chardev_up")) === 1, "chardev up", timeoutMs)
  await until(async () => (await rig.metric("vdrelay_bridge_port_open")) === 1, "guest port open", timeoutMs)
  await until(() => rig.a.session.state === "open" && rig.b.session.state === "open", "both consoles open", timeoutMs)
  await until(() => { const c = controller(rig).session; return c.role === "controller" && c.agent.connected && c.agent.caps !== null }, "the controller sees the agent", timeoutMs)
}

let serial = 0

/**
 * The guest copies `text` and the console sees its grab. A console grab that crosses the copy wins it (spec §2: the
 * client wins a tie) and the guest's grab is never sent: a console that just took control offers the agent again what
 * it held, and that regrab can reach the session agent while xclip takes the selection (e2e chaos takeover-mid-send,
 * 3 rounds in 30, traced: the session agent received the console's grab after the copy and sent none of its own).
 * Then the guest copies again, as a user would; without a console grab at the agent since the copy it is a failure.
 */
const guestCopies = async (rig: Rig, grabbed: Promise<unknown>, text: string): Promise<void> => {
  for (let copy = 1; ; copy++) {
    const mark = rig.agent.logs.session.mark()
    await withTimeout(rig.agent.setClipboard(text), 30_000, "xclip owning the guest clipboard")
    let timer: ReturnType<typeof setTimeout> | undefined
    const seen = await Promise.race([grabbed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 5_000)))])
    clearTimeout(timer)
    if (seen) return
    const crossed = rig.agent.logs.session.lines.slice(mark).some((l) => /received clipboard grab/.test(l))
    if (!crossed || copy === 3) break
  }
  await withTimeout(grabbed, 25_000, "the console sees the guest's grab")
}

/** Guest → console clipboard, console → guest clipboard, and a small file into the agent's transfer folder. */
export const roundTrip = async (rig: Rig): Promise<void> => {
  serial++
  const c = controller(rig)
  const fromGuest = `chaos guest→console ${serial} ${"é".repeat(serial % 17)}`
  // An empty answer means "not available" (spec §7): a grab still in flight from before can be answered that way while
  // the guest's new owner settles; or the guest's grab and a console's crossed between spice-vdagentd and the session
  // agent (the daemon passed the console's on, then sent the guest's to the console with the next serial, while the
  // session agent took the console's and owns nothing: "received request while not owning clipboard", traced in
  // takeover-mid-send), and no other grab comes. Either way the guest copies again. Any other text is a failure at once.
  for (let attempt = 1; ; attempt++) {
    await guestCopies(rig, c.session.next("clipboard-grab"), fromGuest)
    const got = await withTimeout(c.session.requestClipboardText(), 30_000, "guest→console clipboard")
    if (got === fromGuest) break
    if (got !== "" || attempt === 3) throw new Error(`guest→console clipboard: got ${got.length} chars, sent ${fromGuest.length}`)
  }

  const toGuest = `chaos console→guest ${serial} ✓`
  const mark = rig.agent.logs.session.mark()
  await withTimeout(c.session.setClipboardText(toGuest), 30_000, "the console's grab")
  await rig.agent.logs.session.waitFor(/received clipboard grab/, { from: mark, timeoutMs: 30_000 })
  // Right after the grab the session agent may not own the X selection yet: a paste then fails at once; retry it.
  let pasted = ""
  for (let attempt = 1; ; attempt++) {
    try {
      pasted = (await rig.agent.getClipboard({ timeoutMs: 30_000 })).toString("utf8")
      break
    } catch (err) {
      if (attempt === 5 || !/not available/.test(String(err))) throw err
      await new Promise((done) => setTimeout(done, 200))
    }
  }
  if (pasted !== toGuest) throw new Error(`console→guest clipboard: the guest pasted ${pasted.length} chars, sent ${toGuest.length}`)

  const name = `chaos-${serial}.bin`
  const data = fileBytes(64 * 1024 + serial, serial)
  const transfer = c.session.sendFile({ name, data })
  await withTimeout(transfer.done, 60_000, "a small file transfer")
  rig.guestStream.judgeFile(transfer.id, data, "done")
  const written = await readFile(join(rig.agent.xferDir, name))
  if (!written.equals(Buffer.from(data))) throw new Error(`file transfer: ${written.length} bytes written, ${data.length} sent`)
}

/** File content that differs at every position (no two 64 KiB blocks alike), so a doubled or swapped block shows. */
export const fileBytes = (size: number, salt: number): Uint8Array => {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (Math.imul(i + salt, 2654435761) >>> 24) ^ (i >>> 16)
  return out
}

/** Agent log lines that mean lost sync or a refused chunk since `mark` (the real-agent harness's patterns). */
export const syncErrors = (rig: Rig, mark: number): string[] => rig.agent.syncErrors(mark)
