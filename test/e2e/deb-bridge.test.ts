// The bridge as an operator installs it: `npm run build:deb`'s package installed with dpkg -i on this machine, then
// the installed /usr/bin/vdrelay (Debian's /usr/bin/node on the bundle, no repository, no node_modules) run as the unit
// runs it against the test stack (workerd, the simulated agent behind its chardev); a clipboard round trip both ways
// through it, and dpkg -r at the end. Needs root (dpkg): runs as root or with CI set, and then fails, not skips, when
// it cannot.
import { execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { access, chmod, mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect, type Session } from "../../src/client/index.ts"
import { startBridgeProcess } from "../harness/bridge-process.ts"
import { listenNotify } from "../harness/notify-listener.ts"
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
  hostKeyDir: "/var/lib/vdrelay",
  hostKey: "/var/lib/vdrelay/host-key.jwk",
}

const sh = (file: string, args: ReadonlyArray<string>, cwd = "/"): string => execFileSync(file, args, { encoding: "utf8", cwd, stdio: ["ignore", "pipe", "pipe"] })

/**
 * Debian 12's own nodejs (the oldest Node the package allows), unpacked from bookworm's packages into .scratch/ (apt
 * downloads them once): what a hypervisor without NodeSource runs the bridge with. Its binary links libnode and
 * loads a few of its built-ins from /usr/share/nodejs, so it runs in a mount namespace with that folder bound there.
 */
const debianNode = async (): Promise<{ readonly node: string; readonly lib: string; readonly share: string }> => {
  const dir = join(ROOT, ".scratch/debian-nodejs")
  const root = join(dir, "root")
  const node = join(root, "usr/bin/node")
  if (!(await access(node).then(() => true, () => false))) {
    await mkdir(dir, { recursive: true })
    // The newest bookworm build (not NodeSource's, which a CI host may have installed as the candidate).
    const version = /\|\s*(\S+)\s*\|\s*http\S*debian\S* bookworm/.exec(sh("apt-cache", ["madison", "nodejs"]))?.[1]
    if (version === undefined) throw new Error("apt-cache knows no bookworm nodejs: is deb.debian.org in the sources?")
    sh("apt-get", ["download", "-q", `nodejs=${version}`, `libnode108=${version}`, "libc-ares2", "node-acorn", "node-cjs-module-lexer", "node-undici"], dir)
    for (const deb of (await readdir(dir)).filter((f) => f.endsWith(".deb"))) sh("dpkg-deb", ["-x", join(dir, deb), root])
  }
  return { node, lib: join(root, "usr/lib/x86_64-linux-gnu"), share: join(root, "usr/share/nodejs") }
}

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
    // -r as an operator removes it (the host key stays), then --purge so this machine keeps nothing of it.
    if (installed) {
      sh("dpkg", ["-r", PACKAGE])
      expect(sh("stat", ["-c", "%a %U", PATHS.hostKey]).trim()).toBe("600 vdrelay")
      sh("dpkg", ["--purge", PACKAGE])
      expect(await access(PATHS.hostKeyDir).then(() => "present", () => "gone")).toBe("gone")
    }
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
    // The host key, made at install: the bridge's user's alone (it refuses a key others can read).
    expect(sh("stat", ["-c", "%a %U %G %F", PATHS.hostKeyDir]).trim()).toBe("700 vdrelay vdrelay directory")
    expect(sh("stat", ["-c", "%a %U %G %F", PATHS.hostKey]).trim()).toBe("600 vdrelay vdrelay regular file")
    // The bridge's user reads it through the launcher's default (what the unit runs); root sees the same key.
    const thumbprint = sh("runuser", ["-u", "vdrelay", "--", PATHS.launcher, "host-key"]).trim()
    expect(thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(sh(PATHS.launcher, ["host-key"]).trim()).toBe(thumbprint)
    // Type=notify with the watchdog, the check before start and reload, SIGHUP to reload; systemd 252 accepts the unit.
    for (const line of ["Type=notify", "NotifyAccess=all", "WatchdogSec=30", `Environment=VDRELAY_HOST_KEY_FILE=${PATHS.hostKey}`, "ExecReload=/bin/kill -HUP $MAINPID"]) {
      expect(unit.split("\n")).toContain(line)
    }
    expect(unit).toMatch(new RegExp(`^ExecStartPre=${PATHS.launcher} bridge --check --ignore-vm-errors --config ${PATHS.config}$`, "m"))
    expect(unit).toMatch(new RegExp(`^ExecReload=${PATHS.launcher} bridge --check --ignore-vm-errors --config ${PATHS.config}$`, "m"))
    expect(sh("systemd-analyze", ["verify", "--man=no", PATHS.unit]).trim()).toBe("")
    // An upgrade (the package installed again) keeps the key, and with it every token naming it.
    sh("dpkg", ["-i", deb])
    expect(sh(PATHS.launcher, ["host-key"]).trim()).toBe(thumbprint)
    expect(sh("stat", ["-c", "%a %U %G", PATHS.hostKey]).trim()).toBe("600 vdrelay vdrelay")
    // Self-contained: it runs from / with nothing of this repository reachable.
    expect(sh(PATHS.launcher, ["bridge", "--help"])).toMatch(/^usage: vdrelay bridge --config FILE/)
    const bundle = await readFile(PATHS.bundle, "utf8")
    expect(bundle).not.toMatch(/from "tsx|\.ts"\)/)
  })

  it("the installed bridge, run as the unit runs it (user vdrelay, Type=notify), says READY and STOPPING; one VM's missing token does not stop it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vdrelay-deb-notify-"))
    const listener = listenNotify(`@vdrelay-deb-${randomBytes(6).toString("hex")}`)
    try {
      await chmod(dir, 0o755)
      const config = join(dir, "bridge.json")
      await writeFile(config, JSON.stringify({ edge: "ws://127.0.0.1:9/v1/vms/{vm}/agent", tokenFile: join(dir, "{vm}.token"), vms: [{ id: "notoken", chardev: join(dir, "none.sock") }] }))
      await chmod(config, 0o644)
      await until(async () => listener.bound(), "the notify listener", 30_000)
      expect(sh("runuser", ["-u", "vdrelay", "--", PATHS.launcher, "bridge", "--check", "--ignore-vm-errors", "--config", config])).toContain("config usable: 1 VM problem")
      // setpriv execs the launcher as vdrelay (no process in between, as systemd's User=), so signals and the exit
      // status are the bridge's own.
      const bridge = spawn("setpriv", ["--reuid=vdrelay", "--regid=vdrelay", "--init-groups", "--", PATHS.launcher, "bridge", "--config", config], {
        cwd: "/",
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, NOTIFY_SOCKET: listener.address, WATCHDOG_USEC: "2000000" },
      })
      let stderr = ""
      bridge.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<number | null>((ok) => bridge.on("exit", (code) => ok(code)))
      await until(async () => listener.datagrams.some((d) => d.fields.READY === "1"), "READY=1 from the installed bridge", 60_000)
      expect(listener.datagrams.find((d) => d.fields.READY === "1")!.fields.STATUS).toBe("0 up, 0 connecting, 1 failed of 1 VMs")
      await until(async () => listener.datagrams.some((d) => d.fields.WATCHDOG === "1"), "WATCHDOG=1", 60_000)
      expect(stderr).toContain('"vm-failed"')
      bridge.kill("SIGTERM")
      expect(await exited).toBe(0)
      expect(listener.datagrams.at(-1)?.fields.STOPPING).toBe("1")
    } finally {
      listener.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("the installed bridge carries a clipboard round trip both ways between a console and the agent", async () => {
    stack = await startStack({ agent: "sim", vm: "deb-vm", bridge: { name: "deb-host", command: [PATHS.launcher], logLevel: "info" } })
    // The process the stack started is the installed launcher, not the repository's bin/vdrelay.mjs.
    expect(stack.bridge.managed.child.spawnargs[0]).toBe(PATHS.launcher)
    // What an operator runs before enabling the unit: the installed command validates the same config and its token.
    expect(sh(PATHS.launcher, ["bridge", "--check", "--config", join(stack.bridge.dir, "bridge.json")])).toMatch(/\nconfig ok\n$/)
    const token = await stack.worker.mint({ tenant: stack.tenant, vm: stack.vm, role: "controller" })
    client = await connect({ url: `${stack.worker.wsUrl}/v1/vms/${stack.vm}/console`, token, role: "controller", clientName: "deb-test", reconnect: false })
    await until(async () => client!.agent.connected && client!.agent.caps !== null, "the console sees the agent")

    await client.setClipboardText("console → guest through the packaged bridge")
    await until(async () => (await stack!.agent.getClipboard()) === "console → guest through the packaged bridge", "the guest clipboard")

    await stack.agent.setClipboard("guest → console through the packaged bridge")
    await until(async () => (await client!.requestClipboardText()) === "guest → console through the packaged bridge", "the console's paste")
    expect(stack.bridge.events().some((e) => e.event === "bridge-started")).toBe(true)
  })

  it("the installed bundle runs on Debian 12's own nodejs 18 (the package's oldest allowed Node)", async () => {
    if (stack === undefined || client === undefined) throw new Error("needs the round trip above")
    const { node, lib, share } = await debianNode()
    const madeShare = !(await access("/usr/share/nodejs").then(() => true, () => false))
    if (madeShare) await mkdir("/usr/share/nodejs")
    const debianNodeCommand = ["unshare", "--mount", "sh", "-c", `mount --bind ${share} /usr/share/nodejs && LD_LIBRARY_PATH=${lib} exec ${node} "$@"`, "node"]
    expect(sh(debianNodeCommand[0]!, [...debianNodeCommand.slice(1), "--version"]).trim()).toMatch(/^v18\./)
    // The bridge the stack started goes; one on Debian's Node takes the VM over (same worker, agent and console).
    await stack.bridge.stop()
    const bridge = await startBridgeProcess({
      command: [...debianNodeCommand, PATHS.bundle],
      mint: stack.worker.mint,
      tenant: stack.tenant,
      edgeBase: stack.worker.wsUrl,
      vms: [{ id: stack.vm, chardev: stack.agent.sim!.hostSocketPath }],
      name: "deb-host-node18",
      logLevel: "info",
    })
    try {
      await until(async () => bridge.events().some((e) => e.event === "tunnel-connected" || e.event === "tunnel-resumed"), "the Node 18 bridge's tunnel", 60_000)
      await until(async () => client!.agent.connected && client!.agent.caps !== null, "the console sees the agent again", 60_000)
      await client.setClipboardText("console → guest on Debian's Node 18")
      await until(async () => (await stack!.agent.getClipboard()) === "console → guest on Debian's Node 18", "the guest clipboard")
      await stack.agent.setClipboard("guest → console on Debian's Node 18")
      await until(async () => (await client!.requestClipboardText()) === "guest → console on Debian's Node 18", "the console's paste")
    } finally {
      await bridge.stop()
      if (madeShare) await rmdir("/usr/share/nodejs")
    }
  })
})
