// Every fuzz target, by name (`npm run fuzz -- --list`).
import type { FuzzTarget } from "../engine.ts"
import { bridgeLinkTarget, clientLinkTarget } from "./link.ts"
import { bridgeGuestTarget, clientInboxTarget } from "./peers.ts"
import { payloadTarget } from "./protocol-payload.ts"
import { streamTarget } from "./protocol-stream.ts"
import { sessionAgentTarget, sessionBridgeTarget, sessionClientTarget } from "./session.ts"
import { tokenTarget } from "./token.ts"

export const TARGETS: ReadonlyArray<FuzzTarget> = [streamTarget, payloadTarget, clientLinkTarget, bridgeLinkTarget, tokenTarget, sessionAgentTarget, sessionClientTarget, sessionBridgeTarget, bridgeGuestTarget, clientInboxTarget]
