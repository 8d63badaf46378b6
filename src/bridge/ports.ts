// What the socket-free core (vm-core.ts, guest-writer.ts) sees of its shells: the tunnel and the chardev connection.
// Kept apart so that the core's parts can name them without importing each other.
import type { BridgeToRelay } from "../link/types.ts"

/** The tunnel as the core sees it: `send` queues a frame; `congested` while too many bytes are unflushed. */
export interface LinkPort {
  send(frame: BridgeToRelay): void
  readonly congested: boolean
}

/** The chardev as the core sees it. `write` calls `done` once the bytes are handed to the kernel. */
export interface ChardevPort {
  write(bytes: Uint8Array, done: (error?: Error) => void): void
  pause(): void
  resume(): void
  /** Drop the connection (the agent sees EOF and resets; a new epoch follows). */
  close(cause: string): void
  /** Bytes written that QEMU has not taken from the socket yet (undefined: cannot be told). Asked at a migration's STOP. */
  unread?(): Promise<number | undefined>
}
