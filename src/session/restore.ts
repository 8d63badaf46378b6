// Building a fresh session and rebuilding one from storage and WebSocket attachments.
import type { BridgeLinkAttachment, ClientLinkAttachment, PersistedState, SessionCommand } from "./types.ts"
import type { Policy } from "../link/types.ts"
import type { Limits } from "./limits.ts"
import type { SessionState } from "./state.ts"

export const initialSession = (opts: { session: string; policy: Policy; now: number; limits?: Partial<Limits> }): SessionState => ({ session: opts.session })

export const restoreSession = (
  persisted: PersistedState,
  _links: { readonly bridge?: BridgeLinkAttachment; readonly clients: ReadonlyArray<ClientLinkAttachment> },
  _now: number,
  _limits?: Partial<Limits>,
): { state: SessionState; commands: SessionCommand[] } => ({ state: { session: persisted.session }, commands: [] })
