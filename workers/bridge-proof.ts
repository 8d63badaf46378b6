// Proof of possession on bridge links (docs/security.md, "Bridge host keys"). A bridge token that names a host key
// (`cnf.jkt`) opens a link on which the relay's first frame is a fresh challenge; until the bridge's first frame proves
// the key, nothing it sends reaches the session: in particular its hello, which is what displaces a live bridge. A
// copy of the token without the private key is thus refused before the real bridge is touched.
import { checkProof, newNonce } from "../src/auth/proof.ts"
import { decodePeerAuth, encodeChallenge, type PeerAuthFrame } from "../src/link/auth-codec.ts"
import { audit } from "./audit.ts"
import type { ForwardedClaims } from "./forward.ts"

/** What a bridge link still has to prove: kept in its attachment, so hibernating between challenge and answer is safe. */
export interface PendingProof {
  readonly jkt: string
  readonly nonce: string
  readonly tenant: string
  readonly vm: string
  readonly kid: string
}

export interface ProofHost {
  /** Ends the link with close 4401 (the `auth` link error), an error frame first. */
  readonly refuse: (ws: WebSocket, detail: string) => void
  /** Hands a frame held during the check to the link's usual path, in arrival order. */
  readonly replay: (ws: WebSocket, data: ArrayBuffer) => void
  readonly count: (key: string) => void
}

const pendingOf = (ws: WebSocket): PendingProof | undefined => {
  const a: unknown = ws.deserializeAttachment()
  const p = typeof a === "object" && a !== null ? (a as { proof?: PendingProof }).proof : undefined
  return p ?? undefined
}

export class BridgeProofs {
  /** Links whose proof is being checked, with the frames that arrived meanwhile (a bridge need not wait to say hello). */
  private readonly checking = new Map<WebSocket, ArrayBuffer[]>()

  constructor(private readonly host: ProofHost) {}

  /** The attachment field of a new bridge link that must prove its key; the challenge is sent when the link opens. */
  pending(claims: ForwardedClaims): PendingProof | undefined {
    return claims.jkt === undefined ? undefined : { jkt: claims.jkt, nonce: newNonce(), tenant: claims.tenant, vm: claims.vm, kid: claims.kid }
  }

  challenge(ws: WebSocket, pending: PendingProof): void {
    ws.send(encodeChallenge({ t: "challenge", nonce: pending.nonce }))
  }

  /** True when the frame was taken here (the link still owes its proof); false: the link's usual path handles it. */
  gate(ws: WebSocket, data: ArrayBuffer): boolean {
    const held = this.checking.get(ws)
    if (held !== undefined) {
      held.push(data)
      return true
    }
    const pending = pendingOf(ws)
    if (pending === undefined) return false
    const d = decodePeerAuth(data)
    if (d._tag !== "Ok" || d.value.t !== "proof") {
      this.refused(ws, pending, "no-proof", "the first frame must prove the bridge's host key")
      return true
    }
    this.checking.set(ws, [])
    void this.check(ws, pending, d.value)
    return true
  }

  private async check(ws: WebSocket, pending: PendingProof, proof: Extract<PeerAuthFrame, { t: "proof" }>): Promise<void> {
    let failure: string | undefined
    try {
      failure = await checkProof(proof, pending)
    } catch {
      failure = "malformed"
    }
    const held = this.checking.get(ws) ?? []
    this.checking.delete(ws)
    if (failure !== undefined) return this.refused(ws, pending, failure, "host key proof refused")
    if (ws.readyState !== WebSocket.OPEN) return
    // The nonce is spent: a second proof on this link is an ordinary unexpected frame, and the next link gets another.
    ws.serializeAttachment({ ...(ws.deserializeAttachment() as object), proof: undefined })
    this.host.count("links.proof.accepted")
    audit("proof-accepted", { tenant: pending.tenant, vm: pending.vm, kid: pending.kid, jkt: pending.jkt })
    for (const frame of held) this.host.replay(ws, frame)
  }

  private refused(ws: WebSocket, pending: PendingProof, reason: string, detail: string): void {
    this.host.count("links.refused.proof")
    audit("proof-refused", { tenant: pending.tenant, vm: pending.vm, kid: pending.kid, jkt: pending.jkt, reason })
    this.host.refuse(ws, detail)
  }
}
