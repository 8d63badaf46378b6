// Launches Debian's Chromium (/usr/bin/chromium) through playwright-core for the browser tests: headless, no sandbox,
// no GPU, nothing fetched from the network by the browser itself, a fresh profile each time; never a downloaded browser.
import { accessSync, constants } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium } from "playwright-core"

export const CHROMIUM = process.env.VDRELAY_CHROMIUM ?? "/usr/bin/chromium"

export const CHROMIUM_ARGS: ReadonlyArray<string> = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]

export const chromiumAvailable = (): boolean => {
  try {
    accessSync(CHROMIUM, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export interface Browser {
  readonly context: BrowserContext
  close(): Promise<void>
}

export const launchChromium = async (): Promise<Browser> => {
  if (!chromiumAvailable()) throw new Error(`${CHROMIUM} not found: install the Debian package 'chromium' (bash infra/install-deps.sh)`)
  const profile = await mkdtemp(join(tmpdir(), "vdrelay-chromium-"))
  // launchPersistentContext is how playwright takes a --user-data-dir: a fresh, throwaway profile.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    viewport: { width: 1280, height: 900 },
    acceptDownloads: false,
  })
  return {
    context,
    close: async () => {
      await context.close().catch(() => {})
      await rm(profile, { recursive: true, force: true })
    },
  }
}
