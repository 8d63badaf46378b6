// The session's link to the relay across drops: dials, says hello, keeps the resume token, pings, and after a drop
// either reconnects with backoff or ends the session when the close says retrying is pointless (policy, protocol).
import type { ClientToRelay, LinkErrorCode } from "../link/types.ts"
import { backoffDelay, openSocket, type WebSocketConstructor, type WebSocketLike } from "./connection.ts"
import { ClientError } from "./errors.ts"
import type { CloseInfo, ConnectOptions, ConnectionState } from "./types.ts"
import { encodeClientFrame } from "./wire.ts"

export interface LinkCallbacks {
  readonly hello: () => ClientToRelay
  readonly frame: (bytes: Uint8Array) => void
  /** The current WebSocket is gone (whatever happens next). */
  readonly down: () => void
  readonly state: (s: ConnectionState) => void
  readonly close: (info: CloseInfo) => void
  /** The session is over for good. */
  readonly ended: (err: ClientError) => void
}

/** Close codes after which the same request would fail again: policy (auth), protocol, too big, replaced. */
const FATAL_CODES = new Set([1000, 1002, 1003, 1008, 1009, 4000])
const FATAL_ERRORS = new Set<LinkErrorCode>(["policy", "protocol", "too-big", "replaced"])
/** Client-side close code for a link that stopped answering pings (4000-4999 are ours to use). */
const HEARTBEAT_TIMEOUT = 4002

export class Link {
  resumeToken: string | undefined
  private ws: WebSocketLike | undefined
  private attempt = 0
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private heartbeat: ReturnType<typeof setInterval> | undefined
  private lastHeard = 0
  private pings = 0
  private ended = false
  private everWelcomed = false
  private relayError: { code: LinkErrorCode; detail: string } | undefined
  private first: { resolve: () => void; reject: (e: ClientError) => void } | undefined

  constructor(
    private readonly opts: ConnectOptions,
    private readonly Ctor: WebSocketConstructor,
    private readonly cb: LinkCallbacks,
  ) {}

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.first = { resolve, reject }
      void this.dial()
    })
  }

  send(frame: ClientToRelay): void {
    if (this.ws !== undefined && this.ws.readyState === 1) this.ws.send(encodeClientFrame(frame))
  }

  welcomed(resume: string): void {
    // Single use, and "" when the relay cannot resume this link.
    this.resumeToken = resume === "" ? undefined : resume
    this.everWelcomed = true
    this.attempt = 0
    this.cb.state("open")
    this.first?.resolve()
    this.first = undefined
  }

  heard(): void {
    this.lastHeard = Date.now()
  }

  /** The relay sent an `error` frame; its close follows and is judged by the code. */
  relayErrorReceived(code: LinkErrorCode, detail: string): void {
    this.relayError = { code, detail }
  }

  /** We could not make sense of the relay: retrying would only repeat it. */
  fail(err: ClientError): void {
    this.drop(1002, err.detail)
    this.end(err, 1002, err.detail)
  }

  close(): Promise<void> {
    if (this.ended) return Promise.resolve()
    this.drop(1000, "closed by the application")
    this.end(new ClientError("closed", "closed by the application"), 1000, "closed by the application")
    return Promise.resolve()
  }

  private async dial(): Promise<void> {
    this.cb.state(this.everWelcomed ? "reconnecting" : "connecting")
    try {
      await openSocket(this.Ctor, this.opts.url, this.opts.token, {
        opened: (ws) => {
          if (this.ended) return ws.close(1000)
          this.ws = ws
          this.heard()
          this.send(this.cb.hello())
          this.startHeartbeat()
        },
        frame: (bytes) => this.cb.frame(bytes),
        closed: (code, reason) => this.closed(code, reason),
      })
    } catch (err) {
      if (this.ended) return
      if (!this.everWelcomed) return this.end(new ClientError("connect-failed", String((err as Error).message ?? err)), 1006, "")
      this.retry(1006, String((err as Error).message ?? err))
    }
  }

  private closed(code: number, reason: string): void {
    this.stopHeartbeat()
    this.ws = undefined
    this.cb.down()
    if (this.ended) return
    const relayError = this.relayError
    this.relayError = undefined
    const why = relayError === undefined ? reason : `${relayError.code}: ${relayError.detail}`
    const fatal = FATAL_CODES.has(code) || (relayError !== undefined && FATAL_ERRORS.has(relayError.code))
    if (!this.everWelcomed || fatal || this.opts.reconnect === false) {
      const reasonCode = this.everWelcomed ? "closed" : "connect-failed"
      return this.end(new ClientError(reasonCode, `the relay closed the link (code ${code}${why ? `, ${why}` : ""})`, { code, ...(relayError ? { link: relayError.code } : {}) }), code, why)
    }
    this.retry(code, why)
  }

  private retry(code: number, reason: string): void {
    const o = this.opts.reconnect === false ? {} : (this.opts.reconnect ?? {})
    if (this.attempt >= (o.maxAttempts ?? Infinity)) return this.end(new ClientError("closed", `gave up after ${this.attempt} attempts (${reason})`, { code }), code, reason)
    this.cb.state("reconnecting")
    this.cb.close({ code, reason, reconnecting: true })
    const delay = backoffDelay(this.attempt++, o)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      void this.dial()
    }, delay)
  }

  private end(err: ClientError, code: number, reason: string): void {
    if (this.ended) return
    this.ended = true
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.cb.state("closed")
    this.cb.ended(err)
    this.cb.close({ code, reason, reconnecting: false })
    this.first?.reject(err)
    this.first = undefined
  }

  /** Closes the current socket without waiting for its closing handshake. */
  private drop(code: number, reason: string): void {
    const ws = this.ws
    this.stopHeartbeat()
    this.ws = undefined
    if (ws === undefined) return
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null
    try {
      ws.close(code === 1002 ? 4003 : code, reason.slice(0, 120))
    } catch {
      // already closing
    }
    this.cb.down()
  }

  private startHeartbeat(): void {
    const every = this.opts.heartbeatMs ?? 20_000
    if (every <= 0) return
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > 2 * every) {
        this.drop(HEARTBEAT_TIMEOUT, "no answer from the relay")
        if (!this.everWelcomed) return this.end(new ClientError("connect-failed", "no answer from the relay"), HEARTBEAT_TIMEOUT, "")
        return this.retry(HEARTBEAT_TIMEOUT, "no answer from the relay")
      }
      this.send({ t: "ping", n: ++this.pings })
    }, every)
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat)
    this.heartbeat = undefined
  }
}
