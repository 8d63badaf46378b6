// The chardev session: one connection to QEMU's vdagent chardev socket, read under the core's headroom (exactly: each
// read is sized to what the retention bound and the relay's window still allow) and written by the core.
import { Effect, type Scope } from "effect"
import type { Endpoint } from "./config.ts"
import type { BridgeError } from "./errors.ts"
import { openSocket } from "./socket.ts"
import { unreadByPeer } from "./socket-queue.ts"
import type { Established } from "./supervise.ts"
import type { VmCore } from "./vm-core.ts"

// One read becomes one `data` frame: 256 KiB reads cut the frames (hence Durable Object events) per agent message
// four-fold against 64 KiB (docs/benchmarks.md).
const READ_SIZE = 256 * 1024

/** A deliberate close reconnects at once unless the previous one did so less than this long ago (no tight loop). */
const IMMEDIATE_RECONNECT_SPACING_MS = 100

export const chardevSession = (endpoint: Endpoint, core: VmCore) => (mark: Established): Effect.Effect<never, BridgeError, Scope.Scope> =>
  Effect.gen(function* () {
    let lastImmediate = 0
    while (true) {
      let deliberate = false
      const exit = yield* Effect.exit(Effect.scoped(connection(endpoint, core, mark, () => (deliberate = true))))
      // The core hung up on purpose (a guest port close strands bytes in the socket only until the host leaves, spec
      // §12): connect again at once rather than after the supervisor's backoff, so the guest's next opener finds a host.
      if (!deliberate) return yield* exit
      // After a migration that was not continued: not before the guest's agent noticed the hang-up (vm-core.ts).
      yield* Effect.promise(() => core.reconnectReady())
      const now = Date.now()
      if (now - lastImmediate < IMMEDIATE_RECONNECT_SPACING_MS) return yield* exit
      lastImmediate = now
    }
  })

const connection = (endpoint: Endpoint, core: VmCore, mark: Established, closing: () => void): Effect.Effect<never, BridgeError, Scope.Scope> =>
  Effect.gen(function* () {
    const { closed } = yield* openSocket(
      endpoint,
      {
        timeoutMs: 10_000,
        failReason: "ChardevUnavailable",
        closedReason: "ChardevClosed",
        onread: {
          // Sized per read: the bridge never holds more agent bytes than its bound (the guest blocks instead).
          buffer: () => Buffer.allocUnsafe(Math.max(1, Math.min(READ_SIZE, core.readHeadroom))),
          callback: (n, buf) => {
            // A small read in a big buffer is copied so retained memory matches retained bytes.
            const bytes = n * 2 < buf.length ? Uint8Array.prototype.slice.call(buf, 0, n) : buf.subarray(0, n)
            return core.agentBytes(bytes)
          },
        },
      },
      (socket) => {
        mark.established = true
        core.chardevConnected({
          write: (bytes, done) => void socket.write(bytes, (e) => done(e ?? undefined)),
          pause: () => void socket.pause(),
          resume: () => void socket.resume(),
          close: (cause) => {
            closing()
            socket.destroy(new Error(cause))
          },
          unread: () => unreadByPeer(socket),
        })
      },
      (cause) => core.chardevLost(cause),
    )
    return yield* closed
  })
