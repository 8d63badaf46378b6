// Helpers for the workerd tests: tokens signed with the test key from vitest.config.ts, WebSocket upgrades through
// SELF, a frame inbox per socket, and Durable Object counting.
import { SELF, env, listDurableObjectIds } from "cloudflare:test"
import { mintToken, type MintRequest } from "../../src/auth/token.ts"
import { decodeRelayToBridge, encodeBridgeToRelay } from "../../src/link/bridge-codec.ts"
import { decodeRelayToClient, encodeClientToRelay } from "../../src/link/client-codec.ts"
import type { BridgeToRelay, ClientToRelay, RelayToBridge, RelayToClient } from "../../src/link/types.ts"
import { concatBytes } from "../../src/protocol/bytes.ts"

export const KEY = env.VDRELAY_SIGNING_KEY!
export const ORIGIN = "https://relay.test"

export const mint = (req: Omit<MintRequest, "ttl"> & { readonly ttl?: number }, key = KEY): Promise<string> =>
  mintToken(key, { ttl: 300, ...req })

export interface UpgradeOptions {
  readonly token?: string
  /** How the token travels: the browser way (subprotocol) or the header way. */
  readonly via?: "protocol" | "bearer"
  readonly origin?: string
  readonly protocols?: ReadonlyArray<string>
}

export const upgrade = (path: string, o: UpgradeOptions = {}): Promise<Response> => {
  const headers = new Headers({ Upgrade: "websocket" })
  if (o.origin !== undefined) headers.set("Origin", o.origin)
  const protocols = [...(o.protocols ?? [])]
  if (o.token !== undefined && (o.via ?? "protocol") === "protocol") protocols.push("vdrelay.v1", `vdrelay.token.${o.token}`)
  if (o.token !== undefined && o.via === "bearer") headers.set("Authorization", `Bearer ${o.token}`)
  if (protocols.length > 0) headers.set("Sec-WebSocket-Protocol", protocols.join(", "))
  return SELF.fetch(`${ORIGIN}${path}`, { headers })
}

/** A socket with an inbox of decoded frames and a promise of its close. */
export class Peer<In, Out> {
  readonly inbox: In[] = []
  private waiters: Array<() => void> = []
  readonly closed: Promise<{ code: number; reason: string }>

  constructor(
    readonly ws: WebSocket,
    private readonly decode: (b: ArrayBuffer) => { _tag: string; value?: In },
    private readonly encode: (f: Out) => Uint8Array,
  ) {
    ws.binaryType = "arraybuffer"
    ws.accept()
    ws.addEventListener("message", (e) => {
      const d = this.decode(e.data as ArrayBuffer)
      if (d._tag !== "Ok") throw new Error(`relay sent an undecodable frame: ${JSON.stringify(d)}`)
      this.inbox.push(d.value as In)
      for (const w of this.waiters.splice(0)) w()
    })
    this.closed = new Promise((done) => ws.addEventListener("close", (e) => done({ code: e.code, reason: e.reason })))
  }

  send(frame: Out): void {
    this.ws.send(this.encode(frame))
  }

  /** Waits for (and removes) the first frame matching `pred`. */
  async next<T extends In>(pred: (f: In) => f is T): Promise<T>
  async next(pred?: (f: In) => boolean): Promise<In>
  async next(pred: (f: In) => boolean = () => true): Promise<In> {
    for (;;) {
      const i = this.inbox.findIndex(pred)
      if (i >= 0) return this.inbox.splice(i, 1)[0]!
      await new Promise<void>((r) => this.waiters.push(r))
    }
  }
}

export type ClientPeer = Peer<RelayToClient, ClientToRelay>

export interface AgentMessage {
  readonly seq: number
  readonly type: number
  readonly data: Uint8Array
}

/** Receives the next whole agent message (`msg` then `more` frames up to `end`); throws if it is aborted. */
export const receiveMessage = async (peer: ClientPeer): Promise<AgentMessage> => {
  const first = await peer.next((f) => f.t === "msg")
  if (first.t !== "msg") throw new Error("unreachable")
  const parts = [first.data]
  for (let end = first.end; !end; ) {
    const f = await peer.next((g) => (g.t === "more" || g.t === "abort") && g.seq === first.seq)
    if (f.t === "abort") throw new Error(`message ${first.seq} aborted: ${f.reason}`)
    if (f.t !== "more") throw new Error("unreachable")
    parts.push(f.data)
    end = f.end
  }
  const data = concatBytes(parts)
  if (data.length !== first.size) throw new Error(`message ${first.seq}: ${data.length} bytes, size said ${first.size}`)
  return { seq: first.seq, type: first.type, data }
}
export type BridgePeer = Peer<RelayToBridge, BridgeToRelay>

export const clientPeer = (res: Response): ClientPeer => new Peer(res.webSocket!, (b) => decodeRelayToClient(b), encodeClientToRelay)
export const bridgePeer = (res: Response): BridgePeer => new Peer(res.webSocket!, (b) => decodeRelayToBridge(b), encodeBridgeToRelay)

export const doCount = async (): Promise<number> => (await listDurableObjectIds(env.VM_SESSION)).length

export const stubFor = (tenant: string, vm: string) => env.VM_SESSION.get(env.VM_SESSION.idFromName(`${tenant}/${vm}`))
