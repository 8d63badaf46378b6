// One Effect Scope per WebSocket link: its finalizer feeds the actor the link's disconnect event. webSocketClose,
// webSocketError, a close the actor commands and a replaced bridge all end the link here, and only the first of them
// runs the finalizer (DESIGN.md invariant 2: every disconnect through one path, exactly once).
import { Effect, Exit, Scope } from "effect"
import type { LeaveCause } from "../src/session/index.ts"

export class LinkScopes {
  private readonly scopes = new Map<WebSocket, Scope.CloseableScope>()

  /** Opens the link's scope; `onEnd` runs once, with the cause of the first `end`. */
  open(ws: WebSocket, onEnd: (cause: LeaveCause) => void): void {
    const scope = Effect.runSync(Scope.make())
    Effect.runSync(
      Scope.addFinalizerExit(scope, (exit) => Effect.sync(() => onEnd(Exit.isSuccess(exit) ? (exit.value as LeaveCause) : "error"))),
    )
    this.scopes.set(ws, scope)
  }

  isOpen(ws: WebSocket): boolean {
    return this.scopes.has(ws)
  }

  /** Ends the link's scope; false (and nothing runs) when it had already ended. */
  end(ws: WebSocket, cause: LeaveCause): boolean {
    const scope = this.scopes.get(ws)
    if (scope === undefined) return false
    this.scopes.delete(ws)
    Effect.runSync(Scope.close(scope, Exit.succeed(cause)))
    return true
  }
}
