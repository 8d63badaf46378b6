// vdrelay/client: connect a web console (browser or Node ≥ 22) to a VM's guest agent through the relay.
import { Session } from "./session.ts"
import type { ConnectOptions } from "./types.ts"

/** Opens a session; resolves at the relay's welcome (agent state, role and policy are then known). */
export const connect = (options: ConnectOptions): Promise<Session> => new Session(options).start()

export { Session, defaultClientCaps } from "./session.ts"
export { ClientError, type ClientErrorReason } from "./errors.ts"
export { FileTransfer, type FileInput } from "./file-transfer.ts"
export type { MonitorConfig } from "./agent-codec.ts"
export { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX, type ReconnectOptions, type TokenSource, type WebSocketConstructor } from "./connection.ts"
export type * from "./types.ts"
export { Cap, ClipboardType, MessageType, MouseButton, Selection } from "../protocol/constants.ts"
export { hasCap, capBits } from "../protocol/caps.ts"
