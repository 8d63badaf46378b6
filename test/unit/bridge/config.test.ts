// Config parsing: every error names the offending key; a bad VM entry fails that VM only, a bad file as a whole throws;
// defaults and `{vm}` substitution.
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { ConfigError, parseConfig, parseEndpoint } from "../../../src/bridge/config.ts"

const base = { edge: "wss://relay.example.com/v1/vms/{vm}/agent", tokenFile: "/etc/vdrelay/bridge.token", vms: [{ id: "vm-1", chardev: "/run/vdrelay/vm-1.sock" }] }

const errorOf = (config: unknown): ConfigError => {
  try {
    parseConfig(typeof config === "string" ? config : JSON.stringify(config), "host")
  } catch (e) {
    if (e instanceof ConfigError) return e
    throw e
  }
  throw new Error("no error")
}

describe("bridge config", () => {
  it("parses a minimal config with defaults and substitutes {vm}", () => {
    const c = parseConfig(JSON.stringify(base), "hv-7")
    expect(c.bridge).toBe("hv-7")
    expect(c.vms[0]).toEqual({
      id: "vm-1",
      at: "vms[0]",
      chardev: { kind: "unix", path: "/run/vdrelay/vm-1.sock" },
      qmp: undefined,
      url: "wss://relay.example.com/v1/vms/vm-1/agent",
      tokenFile: "/etc/vdrelay/bridge.token",
    })
    expect(c.limits.retainBytes).toBe(8 << 20)
    expect(c.reconnect).toEqual({ baseMs: 250, capMs: 30_000 })
  })

  it("accepts TCP chardevs, per-VM overrides and QMP", () => {
    const c = parseConfig(
      JSON.stringify({
        ...base,
        vms: [{ id: "a", chardev: "tcp:[::1]:5555", edge: "ws://127.0.0.1:8787/x/{vm}", tokenFile: "/t", qmp: { socket: "unix:/run/q.sock", device: "vdport" } }],
      }),
      "h",
    )
    expect(c.vms[0]!.chardev).toEqual({ kind: "tcp", host: "::1", port: 5555 })
    expect(c.vms[0]!.url).toBe("ws://127.0.0.1:8787/x/a")
    expect(c.vms[0]!.qmp).toEqual({ endpoint: { kind: "unix", path: "/run/q.sock" }, device: "vdport", chardev: undefined })
    expect(parseEndpoint("127.0.0.1:4000", "k")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 4000 })
  })

  it("substitutes {vm} in a host-wide tokenFile (bridge tokens name one VM)", () => {
    const c = parseConfig(JSON.stringify({ ...base, tokenFile: "/etc/vdrelay/tokens/{vm}.token" }), "h")
    expect(c.vms[0]!.tokenFile).toBe("/etc/vdrelay/tokens/vm-1.token")
  })

  it("parses the shipped example config (infra/bridge.example.json)", () => {
    const c = parseConfig(readFileSync(resolve(import.meta.dirname, "../../../infra/bridge.example.json"), "utf8"), "h")
    expect(c.vms.map((v) => v.id)).toEqual(["web-01", "build-17", "legacy-03"])
    expect(c.vms[0]!.tokenFile).toBe("/etc/vdrelay/tokens/web-01.token")
    expect(c.vms[2]!.qmp?.endpoint).toEqual({ kind: "tcp", host: "127.0.0.1", port: 4403 })
  })

  it.each([
    ["not JSON", "{", "(file)"],
    ["not an object", "[]", "(file)"],
    ["no vms", { ...base, vms: [] }, "vms"],
    ["vms not an array", { ...base, vms: { id: "a" } }, "vms"],
    ["an unknown top-level key", { ...base, tokenfile: "/x" }, "tokenfile"],
    ["an http edge", { ...base, edge: "https://x/{vm}" }, "edge"],
    ["credentials in the edge URL", { ...base, edge: "wss://u:p@x/{vm}" }, "edge"],
    ["a limit of the wrong type", { ...base, limits: { retainBytes: "8M" } }, "limits.retainBytes"],
    ["a guest buffer smaller than a message", { ...base, limits: { maxGuestMessageBytes: 1 << 20, guestBufferBytes: 1 << 19 } }, "limits.guestBufferBytes"],
    ["a backoff cap below its base", { ...base, reconnect: { baseMs: 1000, capMs: 500 } }, "reconnect.capMs"],
    ["a bad metrics port", { ...base, metricsPort: 70000 }, "metricsPort"],
  ])("rejects the whole file for %s (global), naming the key", (_what, config, key) => {
    expect(errorOf(config).key).toBe(key)
  })

  const good = { id: "ok", chardev: "/run/ok.sock" }
  it.each([
    ["an unknown VM key", { id: "a", chardev: "/s", qmpSocket: "/q" }, "a", "vms[1].qmpSocket"],
    ["a missing chardev", { id: "a" }, "a", "vms[1].chardev"],
    ["a chardev that is neither path nor host:port", { id: "a", chardev: "localhost" }, "a", "vms[1].chardev"],
    ["a port out of range", { id: "a", chardev: "h:70000" }, "a", "vms[1].chardev"],
    ["a bad VM id", { id: "a b", chardev: "/s" }, "vms[1]", "vms[1].id"],
    ["an entry that is not an object", "a", "vms[1]", "vms[1]"],
    ["a QMP block without device", { id: "a", chardev: "/s", qmp: { socket: "/q" } }, "a", "vms[1].qmp.device"],
    ["a per-VM http edge", { id: "a", chardev: "/s", edge: "http://x/{vm}" }, "a", "vms[1].edge"],
  ])("fails only the VM for %s, naming the key; the other VM is kept", (_what, entry, vm, key) => {
    const c = parseConfig(JSON.stringify({ ...base, vms: [good, entry] }), "h")
    expect(c.vms.map((v) => v.id)).toEqual(["ok"])
    expect(c.failed).toEqual([{ vm, key, detail: expect.any(String) }])
  })

  it("fails the later of two entries with one id, and VMs without an edge or token file anywhere", () => {
    const dup = parseConfig(JSON.stringify({ ...base, vms: [{ id: "a", chardev: "/s" }, { id: "a", chardev: "/t" }] }), "h")
    expect(dup.vms.map((v) => v.chardev)).toEqual([{ kind: "unix", path: "/s" }])
    expect(dup.failed).toEqual([{ vm: "vms[1]", key: "vms[1].id", detail: '"a" duplicates vms[0].id' }])
    const noToken = parseConfig(JSON.stringify({ edge: base.edge, vms: [{ ...good, tokenFile: "/t" }, { id: "b", chardev: "/s" }] }), "h")
    expect([noToken.vms.map((v) => v.id), noToken.failed.map((f) => f.key)]).toEqual([["ok"], ["vms[1].tokenFile"]])
    const noEdge = parseConfig(JSON.stringify({ tokenFile: "/t", vms: [{ ...good, edge: "wss://r/{vm}" }, { id: "b", chardev: "/s" }] }), "h")
    expect([noEdge.vms.map((v) => v.id), noEdge.failed.map((f) => f.key)]).toEqual([["ok"], ["vms[1].edge"]])
  })
})
