// step(): dispatch of one event to the module that owns it.
import type { SessionState } from "./state.ts"
import type { SessionCommand, SessionEvent } from "./types.ts"

export const stepSession = (state: SessionState, _event: SessionEvent): { state: SessionState; commands: SessionCommand[] } => ({ state, commands: [] })
