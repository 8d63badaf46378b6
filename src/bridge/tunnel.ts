// The tunnel session: one outbound WebSocket to the VM's Durable Object speaking the bridge link. Hello on open,
// frames to the core, pings for liveness, a bounded amount of unflushed bytes, and a finalizer that tells the relay
// (close 1001 on shutdown) and the core (tunnel lost) why it ended. When the token names a host key, the relay's first
// frame is a challenge, answered with the host key before the hello (docs/security.md, "Bridge host keys"); a token
// file rewritten while the link is up is presented over the link, so the link outlives the old token.
import { readFile } from "node:fs/promises"
import { Effect, type Scope } from "effect"
import WebSocket from "ws"
import { CloseCode, closeReason, decodeChallenge, decodeRelayToBridge, encodeBridgeToRelay, encodePeerAuth, linkErrorOfDecode, closeCodeOf, LINK_PING, LINK_PONG, MAX_FRAME_BYTES } from "../link/index.ts"
import type { VmConfig } from "./config.ts"
import { BridgeError, describeCause } from "./errors.ts"
import { hostKeyFile, loadHostKey, tokenHostKey, type HostKey } from "./host-key.ts"
import type { Logger } from "./log.ts"
import { exitCause } from "./socket.ts"
import type { Established } from "./supervise.ts"
import type { VmCore } from "./vm-core.ts"

export interface TunnelOptions {
  readonly linkBufferBytes: number
  readonly pingIntervalMs: number
  /** How long the relay may take to answer hello with welcome. */
  readonly welcomeTimeoutMs: number
  /** This host's key file (default: VDRELAY_HOST_KEY_FILE, else /etc/vdrelay/host-key.jwk); read only for tokens naming a key. */
  readonly hostKeyFile?: string
  /** How often the token file is read again while the link is up (a new token is sent over the link). Default 60 s. */
  readonly tokenCheckMs?: number
}

/** VDRELAY_TOKEN_CHECK_MS (tests shorten it), else a minute. */
const tokenCheckFromEnv = (): number => {
  const n = Number(process.env.VDRELAY_TOKEN_CHECK_MS ?? "")
  return Number.isSafeInteger(n) && n >= 100 ? n : 60_000
}

/** Answers the relay's challenge for one VM with this host's key. */
interface Prover {
  readonly vm: string
  readonly key: HostKey
}

/** The host key a token asks for, loaded; undefined when the token names none (development tokens). */
const proverFor = (token: string, vm: VmConfig, opts: TunnelOptions): Effect.Effect<Prover | undefined, BridgeError> => {
  const jkt = tokenHostKey(token)
  if (jkt === undefined) return Effect.succeed(undefined)
  return Effect.promise(() => loadHostKey(opts.hostKeyFile ?? hostKeyFile())).pipe(
    Effect.flatMap((key) =>
      key instanceof Error
        ? Effect.fail(fail("TokenUnreadable", key.message))
        : key.jkt !== jkt
          ? Effect.fail(fail("TokenUnreadable", `${vm.tokenFile} names host key ${jkt}, this host's key is ${key.jkt}`))
          : Effect.succeed({ vm: vm.id, key }),
    ),
  )
}

const readToken = (file: string): Effect.Effect<string, BridgeError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => new BridgeError({ reason: "TokenUnreadable", detail: `${file}: ${describeCause(e)}` }),
  }).pipe(
    Effect.map((t) => t.trim()),
    Effect.filterOrFail((t) => t !== "", () => new BridgeError({ reason: "TokenUnreadable", detail: `${file} is empty` })),
  )

const fail = (reason: BridgeError["reason"], detail: string) => new BridgeError({ reason, detail })

/** WebSocket events recorded from the moment it opens until the session takes them (nothing is missed in between). */
class Inbox {
  private queue: Array<[Buffer, boolean]> = []
  private closeInfo: [number, Buffer] | undefined
  private onMessage: ((data: Buffer, isBinary: boolean) => void) | undefined
  private onClose: ((code: number, reason: Buffer) => void) | undefined

  message(data: Buffer, isBinary: boolean): void {
    if (this.onMessage) this.onMessage(data, isBinary)
    else this.queue.push([data, isBinary])
  }

  close(code: number, reason: Buffer): void {
    if (this.onClose) this.onClose(code, reason)
    else this.closeInfo ??= [code, reason]
  }

  take(onMessage: (data: Buffer, isBinary: boolean) => void, onClose: (code: number, reason: Buffer) => void): void {
    this.onMessage = onMessage
    for (const [d, b] of this.queue.splice(0)) onMessage(d, b)
    this.onClose = onClose
    if (this.closeInfo) onClose(...this.closeInfo)
  }

  release(): void {
    this.onMessage = this.onClose = undefined
  }
}

/** Opens the WebSocket (the token travels in the Authorization header, never in the URL, so it stays out of logs). */
const openWebSocket = (url: string, token: string, core: VmCore, inbox: Inbox, opts: TunnelOptions, prover: Prover | undefined): Effect.Effect<WebSocket, BridgeError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<WebSocket, BridgeError>((resume) => {
      const ws = new WebSocket(url, {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
        maxPayload: MAX_FRAME_BYTES,
        handshakeTimeout: 15_000,
      })
      ws.binaryType = "nodebuffer"
      ws.once("unexpected-response", (_req, res) => {
        resume(Effect.fail(fail("TunnelRefused", `HTTP ${res.statusCode ?? "?"} ${res.statusMessage ?? ""}`.trim())))
        ws.terminate()
      })
      ws.once("error", (e) => resume(Effect.fail(fail("TunnelRefused", describeCause(e)))))
      const attach = (): void => {
        ws.on("message", (data: Buffer, isBinary: boolean) => inbox.message(data, isBinary))
        ws.on("close", (code: number, reason: Buffer) => inbox.close(code, reason))
        let inflight = 0
        // Attach before any message can arrive: the welcome may follow the upgrade immediately.
        core.tunnelOpened({
          send: (frame) => {
            const bytes = encodeBridgeToRelay(frame)
            inflight += bytes.length
            ws.send(bytes, (e) => {
              inflight -= bytes.length
              if (e === undefined && inflight <= opts.linkBufferBytes && ws.readyState === WebSocket.OPEN) core.linkDrained()
            })
          },
          get congested() {
            return inflight > opts.linkBufferBytes
          },
        })
        resume(Effect.succeed(ws))
      }
      ws.once("open", () => {
        ws.removeAllListeners("error")
        ws.on("error", () => {}) // the close event that follows carries the outcome
        if (prover === undefined) return attach()
        // The relay's first frame is the challenge; nothing else happens on the link until it is answered.
        const early = (code: number, reason: Buffer): void =>
          resume(Effect.fail(fail("TunnelClosed", `close ${code} before the host key was proven${reason.length > 0 ? `: ${reason.toString("utf8")}` : ""}`)))
        ws.once("close", early)
        ws.once("message", (data: Buffer, isBinary: boolean) => {
          const d = isBinary ? decodeChallenge(data) : undefined
          if (d === undefined || d._tag !== "Ok") {
            ws.off("close", early)
            ws.close(CloseCode.ProtocolError, "expected a challenge")
            return resume(Effect.fail(fail("TunnelProtocol", "the relay's first frame is not a challenge")))
          }
          prover.key.prove(prover.vm, d.value.nonce).then(
            (proof) => {
              ws.off("close", early)
              if (ws.readyState !== WebSocket.OPEN) return resume(Effect.fail(fail("TunnelClosed", "closed while the host key was proven")))
              ws.send(encodePeerAuth({ t: "proof", key: proof.key, sig: proof.sig }))
              attach()
            },
            (e: unknown) => {
              ws.terminate()
              resume(Effect.fail(fail("TunnelProtocol", `host key proof: ${describeCause(e)}`)))
            },
          )
        })
      })
      return Effect.sync(() => ws.terminate())
    }),
    (ws, exit) =>
      Effect.async<void>((resume) => {
        const cause = exitCause(exit, undefined)
        core.tunnelLost(cause)
        if (ws.readyState === WebSocket.CLOSED) return resume(Effect.void)
        // Tell the relay why (1001 on shutdown), wait briefly for its close frame, then drop the TCP connection.
        const timer = setTimeout(() => ws.terminate(), 2_000)
        ws.once("close", () => {
          clearTimeout(timer)
          resume(Effect.void)
        })
        if (ws.readyState === WebSocket.OPEN) ws.close(cause === "shutdown" ? CloseCode.GoingAway : CloseCode.Normal, closeReason(cause === "shutdown" ? "bridge shutting down" : cause))
        else ws.terminate()
      }),
  )

export const tunnelSession = (vm: VmConfig, core: VmCore, log: Logger, opts: TunnelOptions) => (mark: Established): Effect.Effect<never, BridgeError, Scope.Scope> =>
  Effect.gen(function* () {
    // Live migration (migration.ts): no tunnel while this QEMU awaits an incoming migration or has migrated away.
    if (vm.qmp === undefined) core.migration.noQmp()
    if (!core.mayLink()) {
      log.log("info", "tunnel-waits", { cause: `migration: ${core.migration.role}` })
      yield* Effect.promise(() => core.migration.waitLink(() => core.mayLink(), Date.now))
    }
    const token = yield* readToken(vm.tokenFile)
    const prover = yield* proverFor(token, vm, opts)
    const inbox = new Inbox()
    const ws = yield* openWebSocket(vm.url, token, core, inbox, opts, prover)
    // Timers and listeners live until the session ends, however it ends (an async's canceler runs only on interrupt).
    const timers: Array<NodeJS.Timeout> = []
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const t of timers) clearTimeout(t)
        inbox.release()
      }),
    )
    return yield* Effect.async<never, BridgeError>((resume0) => {
      let ended = false
      const resume = (e: Effect.Effect<never, BridgeError>): void => {
        if (!ended) resume0(e)
        ended = true
      }
      let lastHeard = Date.now()
      let current = token
      const protocolError = (detail: string, code: number = CloseCode.ProtocolError): void => {
        log.log("error", "tunnel-protocol-error", { cause: detail })
        ws.close(code, closeReason(detail))
        resume(Effect.fail(fail("TunnelProtocol", detail)))
      }
      const onMessage = (data: Buffer, isBinary: boolean): void => {
        lastHeard = Date.now()
        if (!isBinary) return data.toString("latin1") === LINK_PONG ? undefined : protocolError("text frame on the bridge link")
        const decoded = decodeRelayToBridge(data)
        if (decoded._tag === "Invalid") return protocolError(`${decoded.reason}: ${decoded.detail}`, closeCodeOf(linkErrorOfDecode(decoded)))
        const wasSynced = core.tunnelSynced
        const problem = core.relayFrame(decoded.value)
        if (problem !== undefined) return protocolError(problem)
        // A tunnel counts as established once welcomed, unless the relay said another bridge replaced it.
        if (!wasSynced && core.tunnelSynced) mark.established = true
      }
      const onClose = (code: number, reason: Buffer): void => {
        if (code === CloseCode.Replaced) mark.established = false
        resume(Effect.fail(fail("TunnelClosed", `close ${code}${reason.length > 0 ? ` ${reason.toString("utf8")}` : ""}`)))
      }
      timers.push(
        setTimeout(() => {
          if (!core.tunnelSynced) protocolError(`no welcome within ${opts.welcomeTimeoutMs} ms`, CloseCode.Normal)
        }, opts.welcomeTimeoutMs),
        setInterval(() => {
          if (Date.now() - lastHeard > 2.5 * opts.pingIntervalMs) {
            ws.terminate()
            return resume(Effect.fail(fail("TunnelTimeout", `nothing heard for ${Date.now() - lastHeard} ms`)))
          }
          // A text ping the edge answers itself: an idle tunnel never wakes the hibernated Durable Object.
          if (core.tunnelSynced) ws.send(LINK_PING)
        }, opts.pingIntervalMs),
        // A token file rewritten by provisioning (before the old token expires) is presented over the link: the relay
        // then ends the link at the new token's expiry instead of the old one's, and nothing reconnects.
        setInterval(() => {
          void readFile(vm.tokenFile, "utf8").then(
            (text) => {
              const fresh = text.trim()
              if (fresh === "" || fresh === current || !core.tunnelSynced || ws.readyState !== WebSocket.OPEN) return
              current = fresh
              log.log("info", "token-refreshed", { file: vm.tokenFile })
              ws.send(encodePeerAuth({ t: "token", token: fresh }))
            },
            () => {}, // unreadable for a moment (being rewritten): the next check, or the next connect, tells
          )
        }, opts.tokenCheckMs ?? tokenCheckFromEnv()),
      )
      inbox.take(onMessage, onClose)
    })
  })
