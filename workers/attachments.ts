// What each WebSocket's attachment holds, so a Durable Object woken from hibernation knows every link again: the
// session's own attachment once the link has joined (SetAttachment), or the edge's marker before that.
import type { BridgeLinkAttachment, ClientLinkAttachment, ClientId, LinkAttachment } from "../src/session/index.ts"
import type { Role } from "../src/link/types.ts"
import type { PendingProof } from "./bridge-proof.ts"

export type EdgeAttachment =
  /** Accepted, hello not yet received. `maxRole` is the token's role. */
  | { readonly kind: "pending-client"; readonly client: ClientId; readonly maxRole: Role; readonly since: number }
  /** `proof`: the host key the bridge must prove before anything else (bridge-proof.ts); gone once proven. */
  | { readonly kind: "pending-bridge"; readonly since: number; readonly proof?: PendingProof }
  /** Joined, but the session has not yet written its own attachment (it does in the step that handles the hello). */
  | { readonly kind: "joined-client"; readonly client: ClientId; readonly maxRole: Role }
  | { readonly kind: "joined-bridge" }
  | LinkAttachment

/** The edge's in-memory view of one link, rebuilt from its attachment after a wake-up. */
export type LinkInfo =
  | { readonly kind: "client"; readonly client: ClientId; readonly maxRole: Role; joined: boolean; readonly since: number }
  | { readonly kind: "bridge"; joined: boolean; readonly since: number }

export const linkInfoOf = (a: EdgeAttachment): LinkInfo => {
  switch (a.kind) {
    case "pending-client":
      return { kind: "client", client: a.client, maxRole: a.maxRole, joined: false, since: a.since }
    case "joined-client":
    case "client":
      return { kind: "client", client: a.client, maxRole: a.maxRole, joined: true, since: 0 }
    case "pending-bridge":
      return { kind: "bridge", joined: false, since: a.since }
    case "joined-bridge":
    case "bridge":
      return { kind: "bridge", joined: true, since: 0 }
  }
}

const KINDS = new Set(["pending-client", "pending-bridge", "joined-client", "joined-bridge", "client", "bridge"])

/** The attachment of a socket, or undefined when it has none we understand (the socket is then closed). */
export const readAttachment = (ws: WebSocket): EdgeAttachment | undefined => {
  const a: unknown = ws.deserializeAttachment()
  return typeof a === "object" && a !== null && KINDS.has((a as { kind?: string }).kind ?? "") ? (a as EdgeAttachment) : undefined
}

export const isSessionClient = (a: EdgeAttachment | undefined): a is ClientLinkAttachment => a?.kind === "client"
export const isSessionBridge = (a: EdgeAttachment | undefined): a is BridgeLinkAttachment => a?.kind === "bridge"
