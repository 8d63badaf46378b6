// `vdrelay bridge --check`: a config whose every VM has a readable bridge token for that VM, valid now, passes (exit 0,
// one line per VM); every problem of a bad one is reported with its key (exit 2): unreadable or garbage token files, a
// token of another role or VM, expired or not yet valid. It opens no socket: the chardevs here do not exist.
import { spawn } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { mintToken, type MintRequest } from "../../../src/auth/token.ts"
import { checkConfig } from "../../../src/bridge/check.ts"
import { parseConfig } from "../../../src/bridge/config.ts"
import { cleanupAfterEach, tempDir } from "./fixtures.ts"

const BIN = resolve(import.meta.dirname, "../../../bin/vdrelay.mjs")
const KEY = "check-test-signing-key-0123456789abcdef"
const NOW = 1_800_000_000
const cleanups = cleanupAfterEach()

const token = (vm: string, over: Partial<MintRequest> = {}): Promise<string> => mintToken(KEY, { tenant: "acme", vm, role: "bridge", ttl: 3600, now: NOW, ...over })

/** A config of `vms` (id → token file content, or undefined for a missing file) in a fresh folder. */
const setup = async (vms: Record<string, string | undefined>): Promise<string> => {
  const { dir, cleanup } = await tempDir()
  cleanups.push(cleanup)
  for (const [id, content] of Object.entries(vms)) if (content !== undefined) await writeFile(join(dir, `${id}.token`), `${content}\n`)
  const config = {
    bridge: "hv-check",
    edge: "wss://relay.example.com/v1/vms/{vm}/agent",
    tokenFile: join(dir, "{vm}.token"),
    vms: Object.keys(vms).map((id, i) => ({ id, chardev: join(dir, `${id}.sock`), ...(i === 0 ? { qmp: { socket: join(dir, "qmp.sock"), device: "ua-vdagent" } } : {}) })),
  }
  await writeFile(join(dir, "bridge.json"), JSON.stringify(config))
  return join(dir, "bridge.json")
}

const check = async (file: string, now = NOW) => {
  const { readFile } = await import("node:fs/promises")
  return checkConfig(parseConfig(await readFile(file, "utf8"), "host"), now)
}

describe("vdrelay bridge --check", () => {
  it("passes a config whose tokens are bridge tokens of their VMs, valid now, and says what would run", async () => {
    const file = await setup({ "web-01": await token("web-01"), "db-02": await token("db-02", { jkt: "A".repeat(43) }) })
    const { lines, problems } = await check(file)
    expect(problems).toEqual([])
    expect(lines[0]).toBe('bridge "hv-check": 2 VMs')
    expect(lines[1]).toMatch(/web-01: chardev \S+web-01\.sock, QMP \S+qmp\.sock \(device ua-vdagent\), wss:\/\/relay\.example\.com\/v1\/vms\/web-01\/agent, token of tenant acme, expires 2027-01-15T09:00:00Z$/)
    expect(lines[2]).toMatch(/db-02: .*no QMP.*needs this host's key \(cnf\)$/)
  })

  it("reports every problem with its key: missing, garbage, wrong role, wrong VM, expired, not yet valid", async () => {
    const file = await setup({
      missing: undefined,
      garbage: "not-a-token",
      viewer: await token("viewer", { role: "viewer" }),
      other: await token("elsewhere"),
      expired: await token("expired", { now: NOW - 7200 }),
      early: await token("early", { nbf: NOW + 600 }),
      fine: await token("fine"),
    })
    const { problems } = await check(file)
    const at = (i: number) => problems.filter(([k]) => k === `vms[${i}].tokenFile`).map(([, d]) => d)
    expect(at(0)).toEqual([expect.stringMatching(/cannot read .*missing\.token: ENOENT/)])
    expect(at(1)).toEqual([expect.stringMatching(/is not a token/)])
    expect(at(2)).toEqual([expect.stringMatching(/is a viewer token, not a bridge token/)])
    expect(at(3)).toEqual([expect.stringMatching(/is for VM "elsewhere", not "other"/)])
    expect(at(4)).toEqual([expect.stringMatching(/expired at 2027-01-15T07:00:00Z/)])
    expect(at(5)).toEqual([expect.stringMatching(/is not valid before 2027-01-15T08:10:00Z/)])
    expect(at(6)).toEqual([])
    expect(problems).toHaveLength(6)
  })

  it("as a command: exit 0 and `config ok` for a good config, exit 2 with every problem for a bad one", async () => {
    const now = Math.floor(Date.now() / 1000)
    const good = await setup({ a: await token("a", { now }) })
    const bad = await setup({ a: await token("a", { now }), b: undefined, c: await token("x", { now }) })
    const run = (file: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((done) => {
        const child = spawn(process.execPath, [BIN, "bridge", "--check", "--config", file], { stdio: ["ignore", "pipe", "pipe"] })
        let out = "", err = ""
        child.stdout.on("data", (d: Buffer) => (out += d.toString()))
        child.stderr.on("data", (d: Buffer) => (err += d.toString()))
        child.on("close", (code) => done({ code, out, err }))
      })
    const [ok, ko] = await Promise.all([run(good), run(bad)])
    expect(ok.code).toBe(0)
    expect(ok.out).toMatch(/\nconfig ok\n$/)
    expect(ko.code).toBe(2)
    expect(ko.err).toMatch(/config error at vms\[1\]\.tokenFile: cannot read/)
    expect(ko.err).toMatch(/config error at vms\[2\]\.tokenFile: .* is for VM "x", not "c"/)
    expect(ko.out).not.toContain("config ok")
  })
})
