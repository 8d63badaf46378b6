// The durable part of the state.
import { defaultPolicy } from "../link/types.ts"
import type { SessionState } from "./state.ts"
import type { PersistedState } from "./types.ts"

export const persistedOf = (s: SessionState): PersistedState => ({
  version: 1, session: s.session, policy: defaultPolicy, agentCaps: null, epoch: 0, agentAck: 0, nextSeq: 1, agentResume: null, counters: {},
})
