// The demo console in real Chromium against the `npm start` stack with the real spice-vdagent under Xvfb: clipboard
// both ways through X (xclip), a dropped file byte-exact in the agent's folder, a resolution change answered by the
// agent, and a viewer that sees but cannot send until it takes control. Screenshots of each step: test-artifacts/.
import { createHash, randomBytes } from "node:crypto"
import { mkdir, readFile, rm } from "node:fs/promises"
import { join, resolve } from "node:path"
import type { Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Browser, chromiumAvailable, launchChromium } from "../harness/chromium.ts"
import { type Stack, startStack } from "../harness/stack.ts"
import { realAgentAvailable } from "../harness/real-agent.ts"

const ARTIFACTS = resolve(import.meta.dirname, "../../test-artifacts/browser-console")
const ready = realAgentAvailable() && chromiumAvailable()
// In CI a missing agent or browser is a failure, not a skip.
const suite = ready || process.env.CI === "true" ? describe : describe.skip

let stack: Stack
let browser: Browser
let page: Page
let shot = 0
const screenshot = async (p: Page, name: string): Promise<void> => {
  await p.screenshot({ path: join(ARTIFACTS, `${String(++shot).padStart(2, "0")}-${name}.png`), fullPage: true })
}

/**
 * Pastes in the guest until it gets `text`: the agent takes the selection a moment after the relay acks the grab, and
 * until then xclip finds no owner (or the previous one). Bounded by the test's timeout, not by a clock assertion.
 */
const guestClipboardBecomes = async (text: string): Promise<string> => {
  let last = ""
  for (let i = 0; i < 50 && last !== text; i++) {
    last = await stack.agent.getClipboard().catch((err: Error) => `(xclip: ${err.message})`)
    if (last !== text) await new Promise((r) => setTimeout(r, 100))
  }
  return last
}

/** Waits (in the page) until `selector` matches `check`, then asserts it here so a failure shows the actual value. */
const waitFor = async (p: Page, selector: string, check: "text" | "value" | "attr" | "disabled" | "visible", want: string | boolean, attr = ""): Promise<void> => {
  const read = ([sel, kind, name]: [string, string, string]): string | boolean | null => {
    const el = document.querySelector(sel) as (HTMLElement & { value?: string; disabled?: boolean }) | null
    if (el === null) return null
    if (kind === "text") return el.textContent
    if (kind === "value") return el.value ?? null
    if (kind === "attr") return el.getAttribute(name)
    if (kind === "disabled") return el.disabled === true
    return !el.hidden && el.offsetParent !== null
  }
  await p.waitForFunction(([args, w]) => {
    const [sel, kind, name] = args
    const el = document.querySelector(sel) as (HTMLElement & { value?: string; disabled?: boolean }) | null
    if (el === null) return false
    const v = kind === "text" ? el.textContent : kind === "value" ? el.value : kind === "attr" ? el.getAttribute(name) : kind === "disabled" ? el.disabled === true : !el.hidden && el.offsetParent !== null
    return v === w
  }, [[selector, check, attr], want] as const, { timeout: 60_000 }).catch(() => {})
  expect(await p.evaluate(read, [selector, check, attr] as [string, string, string]), `${selector} ${check}`).toBe(want)
}

const openConsole = async (url: string): Promise<Page> => {
  const p = await browser.context.newPage()
  p.on("pageerror", (e) => console.error(`page error: ${e.message}`))
  await p.goto(url)
  await waitFor(p, "#agent-state", "attr", "on", "data-state")
  return p
}

suite("demo console in Chromium, real agent", () => {
  beforeAll(async () => {
    if (!ready) throw new Error("CI needs the real agent (spice-vdagent, xvfb, xclip) and /usr/bin/chromium: run infra/install-deps.sh")
    await rm(ARTIFACTS, { recursive: true, force: true })
    await mkdir(ARTIFACTS, { recursive: true })
    stack = await startStack({ port: 0, agent: "real" })
    browser = await launchChromium()
    page = await openConsole(await stack.consoleUrl("controller"))
    await screenshot(page, "connected")
  })

  afterAll(async () => {
    await browser?.close()
    await stack?.stop()
  })

  it("shows the agent connected with its caps and this console as controller", async () => {
    await waitFor(page, "#link-state", "text", "open")
    await waitFor(page, "#role", "text", "controller")
    await page.locator("#caps").evaluate((el) => ((el.parentElement as HTMLDetailsElement).open = true))
    const caps = await page.locator("#caps li").allTextContents()
    expect(caps).toEqual(expect.arrayContaining(["MonitorsConfig", "ClipboardByDemand", "ClipboardGrabSerial"]))
    await waitFor(page, "#controls", "disabled", false)
  })

  it("text typed in the page is what the guest pastes (xclip -o on the agent's display)", async () => {
    const text = `typed in Chromium ✓ ${randomBytes(4).toString("hex")}\nsecond line`
    await page.locator("#clipboard").fill(text)
    await waitFor(page, "#clipboard-status", "text", "Copied to the VM's clipboard.")
    expect(await guestClipboardBecomes(text)).toBe(text)
    await screenshot(page, "clipboard-to-guest")
  })

  it("text copied in the guest (xclip -i) shows up in the page", async () => {
    const text = `copied in the guest ${randomBytes(4).toString("hex")}`
    await stack.agent.setClipboard(text)
    await waitFor(page, "#clipboard", "value", text)
    await waitFor(page, "#clipboard-status", "text", "Copied from the VM's clipboard.")
    await screenshot(page, "clipboard-from-guest")
  })

  it("an image pasted in the page is what the guest pastes as image/png", async () => {
    // A real PNG from the browser's own encoder, pasted the way Ctrl+V delivers it.
    const b64 = await page.evaluate(async () => {
      const canvas = document.createElement("canvas")
      canvas.width = 64
      canvas.height = 40
      const g = canvas.getContext("2d")!
      g.fillStyle = "#1f5fbf"
      g.fillRect(0, 0, 64, 40)
      g.fillStyle = "#f0a800"
      g.fillRect(8, 8, 30, 20)
      const blob = await new Promise<Blob>((r) => canvas.toBlob((b) => r(b!), "image/png"))
      const dt = new DataTransfer()
      dt.items.add(new File([blob], "pasted.png", { type: "image/png" }))
      document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true }))
      const bytes = new Uint8Array(await blob.arrayBuffer())
      return btoa(String.fromCharCode(...bytes))
    })
    const png = Buffer.from(b64, "base64")
    await waitFor(page, "#image-preview", "visible", true)
    let got: Buffer = Buffer.alloc(0)
    for (let i = 0; i < 50 && !got.equals(png); i++) {
      got = await stack.agent.real!.getClipboard({ target: "image/png" }).catch(() => Buffer.alloc(0))
      if (!got.equals(png)) await new Promise((r) => setTimeout(r, 100))
    }
    expect(got.equals(png)).toBe(true)
    await screenshot(page, "image-pasted")
  })

  it("a dropped file lands byte-exact in the agent's transfer folder and its bar reaches 100 %", async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 12345)
    const dataTransfer = await page.evaluateHandle((b64) => {
      const bin = atob(b64)
      const data = Uint8Array.from(bin, (c) => c.charCodeAt(0))
      const dt = new DataTransfer()
      dt.items.add(new File([data], "dropped report.bin", { type: "application/octet-stream" }))
      return dt
    }, bytes.toString("base64"))
    await page.dispatchEvent("#drop-zone", "drop", { dataTransfer })
    await waitFor(page, "#transfers li", "attr", "done", "data-status")
    await waitFor(page, "#transfers li .state", "text", "100 % — in the VM's transfer folder")
    expect(await page.locator("#transfers li progress").first().evaluate((p: HTMLProgressElement) => [p.value, p.max])).toEqual([bytes.length, bytes.length])
    const landed = await readFile(join(stack.agent.xferDir, "dropped report.bin"))
    expect(createHash("sha256").update(landed).digest("hex")).toBe(createHash("sha256").update(bytes).digest("hex"))
    await screenshot(page, "file-dropped")
  })

  it("file transfer turned off by the VM's policy: the page says so and a dropped file is refused with that reason", async () => {
    const setPolicy = async (patch: object): Promise<void> => {
      const token = await stack.worker.mint({ tenant: stack.tenant, vm: stack.vm, role: "operator" })
      const r = await fetch(`${stack.url}/v1/vms/${stack.vm}/policy`, { method: "PUT", headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify(patch) })
      expect(r.status).toBeLessThan(300)
    }
    await setPolicy({ fileTransfer: false })
    try {
      await page.waitForFunction(() => document.getElementById("agent-summary")!.textContent!.includes("File transfer disabled by policy."), undefined, { timeout: 60_000 })
      const dataTransfer = await page.evaluateHandle(() => {
        const dt = new DataTransfer()
        dt.items.add(new File(["not allowed"], "blocked.txt", { type: "text/plain" }))
        return dt
      })
      await page.dispatchEvent("#drop-zone", "drop", { dataTransfer })
      await waitFor(page, "#transfers li", "attr", "failed", "data-status")
      await waitFor(page, "#transfers li .state", "text", "failed: file transfer disabled by policy")
      await page.waitForFunction(() => document.getElementById("alerts")!.textContent!.includes("blocked.txt: file transfer disabled by policy"), undefined, { timeout: 60_000 })
      await screenshot(page, "file-transfer-disabled-by-policy")
    } finally {
      await setPolicy({ fileTransfer: true })
    }
    await page.waitForFunction(() => document.getElementById("agent-summary")!.textContent!.includes("File transfer on."), undefined, { timeout: 60_000 })
  })

  it("a resolution change is answered by the agent and the page says so", async () => {
    await page.locator("#res-width").fill("1024")
    await page.locator("#res-height").fill("768")
    await page.getByRole("button", { name: "Apply" }).click()
    await waitFor(page, "#resolution-status", "text", "The agent applied 1024×768.")
    await screenshot(page, "resolution")
    // "Fit to window" asks for the page's viewport (1280×900 in these tests).
    await page.getByRole("button", { name: "Fit to window" }).click()
    await waitFor(page, "#resolution-status", "text", "The agent applied 1280×900.")
  })

  it("a second page opened as viewer sees the state but cannot send, then takes control", async () => {
    const viewer = await openConsole(await stack.consoleUrl("controller", { as: "viewer" }))
    await waitFor(viewer, "#role", "text", "viewer")
    await waitFor(viewer, "#agent-state", "text", "connected")
    await waitFor(viewer, "#controls", "disabled", true)
    await waitFor(viewer, "#viewer-note", "visible", true)
    // Even around the disabled form, the SDK refuses to send for a viewer.
    expect(await viewer.evaluate(() => (globalThis as never as { vdrelaySession: { setClipboardText(t: string): Promise<void> } }).vdrelaySession.setClipboardText("nope").then(() => "sent", (e: { reason: string }) => e.reason))).toBe("not-controller")
    await screenshot(viewer, "viewer")

    await viewer.getByRole("button", { name: "Take control" }).click()
    await waitFor(viewer, "#role", "text", "controller")
    await waitFor(page, "#role", "text", "viewer")
    await waitFor(page, "#controls", "disabled", true)
    const text = `from the new controller ${randomBytes(4).toString("hex")}`
    await viewer.locator("#clipboard").fill(text)
    await waitFor(viewer, "#clipboard-status", "text", "Copied to the VM's clipboard.")
    expect(await guestClipboardBecomes(text)).toBe(text)
    await screenshot(viewer, "viewer-took-control")
    await screenshot(page, "old-controller-now-viewer")
  })

  it("a console rides out a relay restart: it reconnects by itself and the clipboard works again", async () => {
    const p = await openConsole(await stack.consoleUrl("controller"))
    await stack.worker.restart() // workerd killed and started again on the same port and storage: every link drops
    // The page saw the drop, then came back by itself.
    await p.waitForFunction(() => document.getElementById("log")!.textContent!.includes("link reconnecting"), undefined, { timeout: 60_000 })
    await waitFor(p, "#link-state", "text", "open")
    await waitFor(p, "#agent-state", "attr", "on", "data-state")
    const text = `after the relay restarted ${randomBytes(4).toString("hex")}`
    await p.locator("#clipboard").fill(text)
    await waitFor(p, "#clipboard-status", "text", "Copied to the VM's clipboard.")
    expect(await guestClipboardBecomes(text)).toBe(text)
    await screenshot(p, "after-relay-restart")
  })

  it("a viewer-only token has no way to take control", async () => {
    const p = await openConsole(await stack.consoleUrl("viewer"))
    await waitFor(p, "#role", "text", "viewer")
    await waitFor(p, "#take-control", "visible", false)
    await screenshot(p, "viewer-token")
  })
})
