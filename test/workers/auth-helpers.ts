// Helpers of the security tests: EdDSA tokens of the test key set, bridges that answer (or fail) the host-key
// challenge, and snapshots of a VM's durable session state to show a refusal changed nothing.
import { SELF, runInDurableObject } from "cloudflare:test"
import { importPrivateKey, thumbprint, type PrivateJwk } from "../../src/auth/jwk.ts"
import { signProof } from "../../src/auth/proof.ts"
import { mintToken, type MintRequest } from "../../src/auth/token.ts"
import { decodeChallenge, encodePeerAuth, type PeerAuthFrame } from "../../src/link/auth-codec.ts"
import { LINK_VERSION } from "../../src/link/types.ts"
import { bridgePeer, stubFor, upgrade, ORIGIN, type BridgePeer } from "./helpers.ts"
import { TEST_KEYS } from "./test-keys.ts"

export const nowS = (): number => Math.floor(Date.now() / 1000)

/** An EdDSA token signed with `key` (default: the current key of the test key set). */
export const mintEd = (req: Omit<MintRequest, "ttl"> & { readonly ttl?: number }, key: PrivateJwk = TEST_KEYS.current): Promise<string> =>
  mintToken(key, { ttl: 300, ...req })

export const HOST_JKT = await thumbprint(TEST_KEYS.host)

/** A bridge token bound to the test host key. */
export const bridgeToken = (tenant: string, vm: string, extra: Partial<MintRequest> = {}): Promise<string> =>
  mintEd({ tenant, vm, role: "bridge", jkt: HOST_JKT, ...extra })

/** A bridge link as it is before its proof: the socket (frames decoded as bridge frames) and the relay's nonce. */
export interface Challenged {
  readonly ws: WebSocket
  readonly nonce: string
  /** Frames after the challenge, decoded as bridge-link frames. */
  readonly peer: BridgePeer
}

/** Opens /agent with `token` and waits for the challenge (the relay's first frame). */
export const challenged = async (vm: string, token: string): Promise<Challenged> => {
  const res = await upgrade(`/v1/vms/${vm}/agent`, { token, via: "bearer" })
  if (res.status !== 101) throw new Error(`upgrade refused: ${res.status} ${await res.text()}`)
  const ws = res.webSocket!
  // The first frame is the challenge: read it before the bridge-frame inbox takes over.
  const first = new Promise<ArrayBuffer>((done) => ws.addEventListener("message", (e) => done(e.data as ArrayBuffer), { once: true }))
  ws.binaryType = "arraybuffer"
  ws.accept()
  const d = decodeChallenge(await first)
  if (d._tag !== "Ok") throw new Error(`first frame is not a challenge: ${JSON.stringify(d)}`)
  return { ws, nonce: d.value.nonce, peer: bridgePeerAfterChallenge(res) }
}

// bridgePeer accepts the socket itself; ours is accepted already, so build the peer over the same socket lazily.
const bridgePeerAfterChallenge = (res: Response): BridgePeer => {
  const ws = res.webSocket!
  const accept = ws.accept.bind(ws)
  ws.accept = () => {} // already accepted above
  const peer = bridgePeer(res)
  ws.accept = accept
  return peer
}

export const proofBy = async (key: PrivateJwk, vm: string, nonce: string): Promise<Extract<PeerAuthFrame, { t: "proof" }>> => ({
  t: "proof",
  key: key.x,
  sig: await signProof(await importPrivateKey(key), vm, nonce),
})

export const sendAuth = (ws: WebSocket, frame: PeerAuthFrame): void => ws.send(encodePeerAuth(frame))

export const bridgeHello = (name: string) =>
  ({ t: "hello", v: LINK_VERSION, bridge: name, epoch: 1, chardev: true, from: 0, wrote: 0, port: "open" }) as const

/** A real bridge: proves the host key, says hello and is welcomed. Returns the peer and the proof it sent. */
export const provenBridge = async (tenant: string, vm: string, name = "real-bridge", extra: Partial<MintRequest> = {}) => {
  const c = await challenged(vm, await bridgeToken(tenant, vm, extra))
  const proof = await proofBy(TEST_KEYS.host, vm, c.nonce)
  sendAuth(c.ws, proof)
  c.peer.send(bridgeHello(name))
  await c.peer.next((f) => f.t === "welcome")
  return { ...c, proof }
}

/** The VM's durable session state (as stored), to compare before and after a refusal. */
export const storedState = (tenant: string, vm: string): Promise<string | null> =>
  runInDurableObject(stubFor(tenant, vm), (_i, state) => {
    const row = state.storage.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = 'state'").toArray()[0]
    return row?.v ?? null
  })

export const status = async (tenant: string, vm: string, key: PrivateJwk = TEST_KEYS.current): Promise<{ agent: { bridgeName: string | null }; edge: Record<string, number> }> => {
  const token = await mintEd({ tenant, vm, role: "operator" }, key)
  const res = await SELF.fetch(`${ORIGIN}/v1/vms/${vm}/status`, { headers: { Authorization: `Bearer ${token}` } })
  if (!res.ok) throw new Error(`status: ${res.status}`)
  return res.json()
}

/** Resolves once the relay has handled every frame the bridge sent before (pongs answer in order). */
export const roundTrip = async (peer: BridgePeer, n: number): Promise<void> => {
  peer.send({ t: "ping", n })
  await peer.next((f) => f.t === "pong" && f.n === n)
}

/** The VM's Durable Object alarm (ms since the epoch), or null. */
export const alarmOf = (tenant: string, vm: string): Promise<number | null> =>
  runInDurableObject(stubFor(tenant, vm), (_i, state) => state.storage.getAlarm())
