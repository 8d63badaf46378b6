// The real bridge against the real Worker bundle in workerd, with production-style keys (issue 14): an EdDSA bridge
// token naming this host's key; the bridge answers the relay's challenge and its tunnel comes up. A copy of the same
// token used without the host key is refused with close 4401 while the real tunnel stays up and is never replaced;
// a host key that is not the one the token names stops the bridge before it connects.
import { rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { generateKeyPair, thumbprint, type PrivateJwk } from "../../src/auth/jwk.ts"
import { mintToken } from "../../src/auth/token.ts"
import { createHostKey } from "../../src/bridge/host-key.ts"
import { LINK_VERSION, decodeChallenge, encodeBridgeToRelay } from "../../src/link/index.ts"
import { startWorker, type LocalWorker } from "../harness/worker.ts"
import { startBridge, startFakeChardev, tempDir, until, type FakeChardev, type InProcessBridge } from "../unit/bridge/fixtures.ts"

const VM = "vm1"
const SKEW = 1
let worker: LocalWorker
let signing: PrivateJwk
let dir: { dir: string; cleanup: () => Promise<void> }
let chardev: FakeChardev
let bridge: InProcessBridge | undefined

beforeAll(async () => {
  signing = (await generateKeyPair("e2e-2026")).privateJwk
  const { d: _d, ...pub } = signing
  worker = await startWorker({ vars: { VDRELAY_JWKS: JSON.stringify({ keys: [pub] }), VDRELAY_CLOCK_SKEW_SECONDS: String(SKEW) } })
  dir = await tempDir()
  chardev = await startFakeChardev(join(dir.dir, "vm1.sock"))
})

afterAll(async () => {
  await bridge?.stop()
  await chardev?.close()
  await worker?.stop()
  await dir?.cleanup()
})

const bridgeConfig = (tokenFile: string) => ({ edge: `${worker.wsUrl}/v1/vms/{vm}/agent`, tokenFile, vms: [{ id: VM, chardev: chardev.path }] })

describe("bridge host key against the real Worker", () => {
  it("the bridge proves its host key and its tunnel comes up; a thief with the token alone is refused (4401), the tunnel untouched", async () => {
    const keyFile = join(dir.dir, "host-key.jwk")
    const hostKey = await createHostKey(keyFile)
    if (hostKey instanceof Error) throw hostKey
    process.env.VDRELAY_HOST_KEY_FILE = keyFile
    const token = await mintToken(signing, { tenant: "acme", vm: VM, role: "bridge", ttl: 600, jkt: await thumbprint(hostKey) })
    const tokenFile = join(dir.dir, "bridge.token")
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 })
    bridge = await startBridge(dir.dir, bridgeConfig(tokenFile))
    await until(() => bridge!.metric("vdrelay_bridge_tunnel_up") === 1, "the tunnel is up", 60_000)
    const connects = bridge.metric("vdrelay_bridge_tunnel_connects_total")

    // The thief: same token, no host key. It gets the challenge and can only say hello.
    const thief = new WebSocket(`${worker.wsUrl}/v1/vms/${VM}/agent`, { headers: { authorization: `Bearer ${token}` } })
    const first = await new Promise<Buffer>((ok, fail) => {
      thief.once("message", (d: Buffer) => ok(d))
      thief.once("error", fail)
    })
    expect(decodeChallenge(first)._tag).toBe("Ok")
    const closed = new Promise<number>((ok) => thief.once("close", (code: number) => ok(code)))
    thief.send(encodeBridgeToRelay({ t: "hello", v: LINK_VERSION, bridge: "thief", epoch: 1, chardev: true, from: 0, wrote: 0, port: "open" }))
    expect(await closed).toBe(4401)

    // The real tunnel: still up, never dropped or replaced.
    expect(bridge.metric("vdrelay_bridge_tunnel_up")).toBe(1)
    expect(bridge.metric("vdrelay_bridge_tunnel_connects_total")).toBe(connects)
    expect(bridge.logs.filter((l) => String(l.cause ?? "").includes("4000"))).toEqual([])
    await bridge.stop()
    bridge = undefined
  })

  it("a token file rewritten while the tunnel is up is presented over the link: the tunnel outlives the old token", async () => {
    const keyFile = join(dir.dir, "refresh-host-key.jwk")
    const hostKey = await createHostKey(keyFile)
    if (hostKey instanceof Error) throw hostKey
    process.env.VDRELAY_HOST_KEY_FILE = keyFile
    process.env.VDRELAY_TOKEN_CHECK_MS = "200"
    const jkt = await thumbprint(hostKey)
    const tokenFile = join(dir.dir, "refresh.token")
    const iat = Math.floor(Date.now() / 1000)
    await writeFile(tokenFile, `${await mintToken(signing, { tenant: "acme", vm: VM, role: "bridge", ttl: 4, jkt, now: iat })}\n`, { mode: 0o600 })
    bridge = await startBridge(dir.dir, bridgeConfig(tokenFile))
    await until(() => bridge!.metric("vdrelay_bridge_tunnel_up") === 1, "the tunnel is up", 60_000)
    const connects = bridge.metric("vdrelay_bridge_tunnel_connects_total")
    await writeFile(`${tokenFile}.new`, `${await mintToken(signing, { tenant: "acme", vm: VM, role: "bridge", ttl: 600, jkt })}\n`, { mode: 0o600 })
    await rename(`${tokenFile}.new`, tokenFile)
    await until(() => bridge!.logs.some((l) => l.event === "token-refreshed"), "the bridge presents the new token", 30_000)
    // Past the first token's end on the relay (exp + skew): only a refreshed link is still the same tunnel.
    await new Promise((r) => setTimeout(r, (iat + 4 + SKEW) * 1000 - Date.now() + 1_500))
    expect(bridge.metric("vdrelay_bridge_tunnel_up")).toBe(1)
    expect(bridge.metric("vdrelay_bridge_tunnel_connects_total")).toBe(connects)
    delete process.env.VDRELAY_TOKEN_CHECK_MS
    await bridge.stop()
    bridge = undefined
  })

  it("a bridge whose host key is not the one its token names does not connect, and says why", async () => {
    const other = (await generateKeyPair()).privateJwk
    const keyFile = join(dir.dir, "other-host-key.jwk")
    await writeFile(keyFile, JSON.stringify(other), { mode: 0o600 })
    process.env.VDRELAY_HOST_KEY_FILE = keyFile
    const named = (await generateKeyPair()).publicJwk
    const token = await mintToken(signing, { tenant: "acme", vm: VM, role: "bridge", ttl: 600, jkt: await thumbprint(named) })
    const tokenFile = join(dir.dir, "mismatch.token")
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 })
    bridge = await startBridge(dir.dir, bridgeConfig(tokenFile))
    await until(() => bridge!.logs.some((l) => JSON.stringify(l).includes("this host's key is")), "the mismatch is logged", 30_000)
    expect(bridge.metric("vdrelay_bridge_tunnel_connects_total")).toBe(0)
    await bridge.stop()
    bridge = undefined
  })
})
