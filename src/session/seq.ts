// Agent-message sequence numbers towards clients (owner of `nextSeq` and `seqLease`).
import type { SessionState } from "./state.ts"

/** Hands out agent-message seqs; the persisted lease keeps them increasing across restarts. */
export const allocSeq = (s: SessionState): number => {
  const seq = s.nextSeq++
  if (s.nextSeq >= s.seqLease) {
    s.seqLease = s.nextSeq + 4096
    s.persistDirty = true
  }
  return seq
}
