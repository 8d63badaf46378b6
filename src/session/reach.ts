// Whether the agent can be reached, as the state says it: the predicates every layer asks before it writes or tells.
import { Cap } from "../protocol/constants.ts"
import { hasCap } from "../protocol/caps.ts"
import type { SessionState } from "./state.ts"

/** Whether guest-bound bytes can be handed to the bridge now. */
export const writable = (s: SessionState): boolean => s.bridge !== null && s.chardev && s.port !== "closed"

/**
 * Whether guest-bound messages are accepted — written now, or held while the tunnel is down within its grace (hold.ts)
 * — which is also whether clients see the agent as connected: a tunnel blip within its grace does not count.
 */
export const reachable = (s: SessionState): boolean => (s.bridge !== null || s.graceUntil !== null) && s.chardev && s.port !== "closed"

/** Whether the agent announced MOUSE_STATE (pointer updates are sent to it only then). */
export const agentTakesMouse = (s: SessionState): boolean => s.rawCaps !== null && hasCap(s.rawCaps, Cap.MouseState)
