// Opening a stream socket (UNIX or TCP) inside a Scope: the socket is destroyed by the scope's finalizer, and the
// session waits on `closed` for the reason it ended.
import net from "node:net"
import { Cause, Effect, type Exit, Option, type Scope } from "effect"
import type { Endpoint } from "./config.ts"
import { BridgeError, type BridgeErrorReason, describeCause } from "./errors.ts"

export const describeEndpoint = (e: Endpoint): string => (e.kind === "unix" ? e.path : `${e.host}:${e.port}`)

export interface OpenSocket {
  readonly socket: net.Socket
  /** Completes (with the reason) when the socket closes for any reason. */
  readonly closed: Effect.Effect<never, BridgeError>
}

/**
 * Connects, calling `onConnect` synchronously in the connect event (before the first read can happen), and registers
 * `release(cause)` as the finalizer: it runs exactly once, after the socket is destroyed, with why it ended.
 */
export const openSocket = (
  endpoint: Endpoint,
  options: { readonly onread?: net.OnReadOpts; readonly timeoutMs: number; readonly closedReason: BridgeErrorReason; readonly failReason: BridgeErrorReason },
  onConnect: (socket: net.Socket) => void,
  release: (cause: string) => void,
): Effect.Effect<OpenSocket, BridgeError, Scope.Scope> => {
  let lastError: string | undefined
  return Effect.acquireRelease(
    Effect.async<net.Socket, BridgeError>((resume) => {
      const target = endpoint.kind === "unix" ? { path: endpoint.path } : { host: endpoint.host, port: endpoint.port, noDelay: true }
      const socket = net.connect({ ...target, ...(options.onread ? { onread: options.onread } : {}) })
      const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${options.timeoutMs} ms`)), options.timeoutMs)
      const fail = (e: Error): void => {
        clearTimeout(timer)
        resume(Effect.fail(new BridgeError({ reason: options.failReason, detail: `${describeEndpoint(endpoint)}: ${describeCause(e)}` })))
      }
      socket.once("error", fail)
      socket.once("connect", () => {
        clearTimeout(timer)
        socket.off("error", fail)
        socket.on("error", (e) => (lastError = describeCause(e)))
        onConnect(socket)
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => {
        clearTimeout(timer)
        socket.destroy()
      })
    }),
    (socket, exit) =>
      Effect.sync(() => {
        socket.destroy()
        release(exitCause(exit, lastError))
      }),
  ).pipe(
    Effect.map((socket) => ({
      socket,
      closed: Effect.async<never, BridgeError>((resume) => {
        const done = (): void =>
          resume(Effect.fail(new BridgeError({ reason: options.closedReason, detail: lastError ?? "closed by peer" })))
        if (socket.destroyed) done()
        else socket.once("close", done)
        return Effect.sync(() => socket.off("close", done))
      }),
    })),
  )
}

/** Why a scope ended, for the disconnect log line: "shutdown" for an interrupt, else the error. */
export const exitCause = (exit: Exit.Exit<unknown, unknown>, fallback: string | undefined): string => {
  if (exit._tag === "Success") return fallback ?? "closed"
  if (Cause.isInterruptedOnly(exit.cause)) return "shutdown"
  return Option.match(Cause.failureOption(exit.cause), { onNone: () => fallback ?? "defect", onSome: describeCause })
}
