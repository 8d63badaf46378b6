// Guest-bound work that can no longer reach the agent it was meant for (agent gone, restarted or replaced).
import type { NoticeCode } from "../link/types.ts"
import type { SessionState } from "./state.ts"
import { failInflight, forgetMouse, streamAbort } from "./guest-out.ts"
import { discardHeld } from "./hold.ts"
import { dropInbound } from "./inbound.ts"
import { xfersEnded } from "./xfers.ts"

/**
 * The half-streamed message is aborted and every message not yet confirmed written (or held while the tunnel was
 * down) is reported to its sender; inbound messages being stored are dropped too.
 */
export const discardGuestBound = (s: SessionState, code: NoticeCode, detail: string): void => {
  for (const c of s.clients.values()) if (c.inMsg !== null && c.inMsg.mode !== "drop") dropInbound(s, c, code, detail)
  streamAbort(s)
  failInflight(s, code, detail)
  discardHeld(s, code, detail)
  // The agent these transfers were open on is gone (or reset).
  xfersEnded(s)
  forgetMouse(s)
}
