// The session actor's in-memory state (opaque to adapters): filled in by the modules that own each part.
export interface SessionState {
  readonly session: string
}
