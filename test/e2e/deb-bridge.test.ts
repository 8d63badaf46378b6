// The bridge as an operator installs it: `npm run build:deb`'s package installed with dpkg -i on this machine, then
// the installed /usr/bin/vdrelay (Debian's /usr/bin/node on the bundle, no repository, no node_modules) run as the unit
// runs it against the test stack (workerd, the simulated agent behind its chardev); a clipboard round trip both ways
// through it, and dpkg -r at the end. Needs root (dpkg): runs as root or with CI set, and then fails, not skips, when
// it cannot.
import { execFileSync } from "node:child_process"
import { readFile, stat } from "node:fs/promises"
import { resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect, type Session } from "../../src/client/index.ts"
import { type Stack, startStack } from "../harness/stack.ts"

const run = process.env.CI !== undefined || process.getuid?.() === 0
const ROOT = resolve(import.meta.dirname, "../..")
const PACKAGE = "vdrelay-bridge"
/** Where the package must put things: the paths docs/operations.md gives operators. */
const PATHS = {
  bundle: "/usr/lib/vdrelay/vdrelay.mjs",
  launcher: "/usr/bin/vdrelay",
  unit: "/lib/systemd/system/vdrelay-bridge.service",
  tmpfiles: "/usr/lib/tmpfiles.d/vdrelay.conf",
  exampleConfig: "/etc/vdrelay/bridge.example.json",
  config: "/etc/vdrelay/bridge.json",
  tokens: "/etc/vdrelay/tokens",
}

const sh = (file: string, args: ReadonlyArray<string>, cwd = "/"): string => execFileSync(file, args, { encoding: "utf8", cwd, stdio: ["ignore", "pipe", "pipe"] })

const until = async (pred: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe.skipIf(!run)("the .deb's bridge (dpkg -i, the installed launcher, dpkg -r)", () => {
  let deb: string
  let stack: Stack | undefined
  let client: Session | undefined
  let installed = false

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error("installing the .deb needs root (dpkg -i); run the e2e tests as root in CI")
    // `npm run build:deb`, as CI and a release run it; it prints "<file>: <size> KiB".
    deb = sh(process.execPath, ["--import", "tsx", "scripts/build-deb.ts"], ROOT).trim().split(": ")[0]!
    expect(deb).toMatch(/\/dist\/vdrelay-bridge_[^_]+_all\.deb$/)
    sh("dpkg", ["-i", deb])
    installed = true
  }, 120_000)

  afterAll(async () => {
    await client?.close()
    await stack?.stop()
    // -r as an operator removes it, then --purge so this machine keeps no conffile of it.
    if (installed) for (const action of ["-r", "--purge"]) sh("dpkg", [action, PACKAGE])
  })

  it("installs the launcher, the bundle, the unit, tmpfiles, the example conffile and the system user", async () => {
    expect(sh("dpkg-query", ["-W", "-f=${Status} ${Architecture}", PACKAGE])).toBe("install ok installed all")
    expect(sh("dpkg-query", ["-W", "-f=${Conffiles}", PACKAGE])).toContain(PATHS.exampleConfig)
    const unit = await readFile(PATHS.unit, "utf8")
    expect(unit).toMatch(new RegExp(`^ExecStart=${PATHS.launcher} bridge --config ${PATHS.config}$`, "m"))
    expect(unit).toMatch(/^User=vdrelay$/m)
    await stat(PATHS.tmpfiles)
    // The unit's User= and Group=: a system user with its own group, no login.
    const [, , uid, , , , shell] = sh("getent", ["passwd", "vdrelay"]).trim().split(":")
    expect(Number(uid)).toBeLessThan(1000)
    expect(shell).toMatch(/nologin|false/)
    expect(sh("stat", ["-c", "%a %U %G", PATHS.tokens]).trim()).toBe("750 root vdrelay")
    // Self-contained: it runs from / with nothing of this repository reachable.
    expect(sh(PATHS.launcher, ["bridge", "--help"])).toMatch(/^usage: vdrelay bridge --config FILE/)
    const bundle = await readFile(PATHS.bundle, "utf8")
    expect(bundle).not.toMatch(/from "tsx|\.ts"\)/)
  })

  it("the installed bridge carries a clipboard round trip both ways between a console and the agent", async () => {
    stack = await startStack({ agent: "sim", vm: "deb-vm", bridge: { name: "deb-host", command: [PATHS.launcher], logLevel: "info" } })
    // The process the stack started is the installed launcher, not the repository's bin/vdrelay.mjs.
    expect(stack.bridge.managed.child.spawnargs[0]).toBe(PATHS.launcher)
    const token = await stack.worker.mint({ tenant: stack.tenant, vm: stack.vm, role: "controller" })
    client = await connect({ url: `${stack.worker.wsUrl}/v1/vms/${stack.vm}/console`, token, role: "controller", clientName: "deb-test", reconnect: false })
    await until(async () => client!.agent.connected && client!.agent.caps !== null, "the console sees the agent")

    await client.setClipboardText("console → guest through the packaged bridge")
    await until(async () => (await stack!.agent.getClipboard()) === "console → guest through the packaged bridge", "the guest clipboard")

    await stack.agent.setClipboard("guest → console through the packaged bridge")
    await until(async () => (await client!.requestClipboardText()) === "guest → console through the packaged bridge", "the console's paste")
    expect(stack.bridge.events().some((e) => e.event === "bridge-started")).toBe(true)
  })
})
