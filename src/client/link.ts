// The session's link to the relay across drops: dials, says hello, keeps the resume token, pings, and after a drop
// either reconnects with backoff or ends the session when the close says retrying is pointless (policy, protocol,
// authentication). With a token source function it presents a fresh token over the link before the current one
// expires, so the relay does not end the link (close 4401).
import { encodePeerAuth } from "../link/auth-codec.ts"
import { CloseCode } from "../link/close-codes.ts"
import { LINK_PING } from "../link/heartbeat.ts"
import type { ClientToRelay, LinkErrorCode } from "../link/types.ts"
import { backoffDelay, openSocket, type WebSocketConstructor, type WebSocketLike } from "./connection.ts"
import { EXPIRED_GRACE_SECONDS, refreshAt, tokenLifetime } from "./token-lifetime.ts"
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
  private ended = false
  private everWelcomed = false
  private relayError: { code: LinkErrorCode; detail: string } | undefined
  /** The token of the current (or last) socket. */
  private token: string | undefined
  private refreshTimer: ReturnType<typeof setTimeout> | undefined
  /** The last link ended for authentication: the next dial, with a fresh token, is the only other chance. */
  private authRetry = false
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
    this.authRetry = false
    this.scheduleRefresh()
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
    let token: string
    try {
      token = typeof this.opts.token === "function" ? await this.opts.token() : this.opts.token
    } catch (err) {
      if (this.ended) return
      if (!this.everWelcomed) return this.end(new ClientError("auth", `the token source failed: ${String((err as Error).message ?? err)}`), CloseCode.Auth, "")
      return this.retry(1006, `the token source failed: ${String((err as Error).message ?? err)}`)
    }
    if (this.ended) return
    const life = tokenLifetime(token)
    if (life !== undefined && life.exp + EXPIRED_GRACE_SECONDS < Date.now() / 1000) {
      return this.end(new ClientError("auth", "the token has expired"), CloseCode.Auth, "token expired")
    }
    this.token = token
    try {
      await openSocket(this.Ctor, this.opts.url, token, {
        opened: (ws) => {
          if (this.ended) return ws.close(1000)
          this.ws = ws
          this.heard()
          this.send(this.cb.hello())
          this.startHeartbeat()
        },
        frame: (bytes) => this.cb.frame(bytes),
        pong: () => this.heard(),
        closed: (code, reason) => this.closed(code, reason),
      })
    } catch (err) {
      if (this.ended) return
      // Browsers do not show why an upgrade was refused; right after a close for authentication, it was the token.
      if (this.authRetry) return this.end(new ClientError("auth", `reconnecting with a fresh token failed (${String((err as Error).message ?? err)})`, { code: CloseCode.Auth }), CloseCode.Auth, "")
      if (!this.everWelcomed) return this.end(new ClientError("connect-failed", String((err as Error).message ?? err)), 1006, "")
      this.retry(1006, String((err as Error).message ?? err))
    }
  }

  private closed(code: number, reason: string): void {
    this.stopHeartbeat()
    this.stopRefresh()
    this.ws = undefined
    this.cb.down()
    if (this.ended) return
    const relayError = this.relayError
    this.relayError = undefined
    const why = relayError === undefined ? reason : `${relayError.code}: ${relayError.detail}`
    if (code === CloseCode.Auth || relayError?.code === "auth") {
      // Expired, revoked or refused: a token source may have a fresh token (one try); a fixed token never will.
      if (typeof this.opts.token !== "function" || this.authRetry || !this.everWelcomed || this.opts.reconnect === false) {
        return this.end(new ClientError("auth", `the relay ended the link (code ${code}${why ? `, ${why}` : ""})`, { code, link: "auth" }), code, why)
      }
      this.authRetry = true
      return this.retry(code, why)
    }
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
    this.stopRefresh()
    this.cb.state("closed")
    this.cb.ended(err)
    this.cb.close({ code, reason, reconnecting: false, error: err })
    this.first?.reject(err)
    this.first = undefined
  }

  /** Closes the current socket without waiting for its closing handshake. */
  private drop(code: number, reason: string): void {
    const ws = this.ws
    this.stopHeartbeat()
    this.stopRefresh()
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
      // A text ping the relay's edge answers itself: an idle console never wakes the hibernated Durable Object.
      if (this.ws !== undefined && this.ws.readyState === 1) this.ws.send(LINK_PING)
    }, every)
  }

  /** With a token source: ask it for a fresh token a little before the current one expires, and send it over the link. */
  private scheduleRefresh(): void {
    this.stopRefresh()
    const life = this.token === undefined ? undefined : tokenLifetime(this.token)
    if (typeof this.opts.token !== "function" || life === undefined) return
    const at = refreshAt(life)
    // setTimeout holds at most ~24.8 days: a longer wait is taken in steps.
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined
      if (Date.now() < at - 1000) return this.scheduleRefresh()
      void this.refresh(life.exp)
    }, Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1))
  }

  private async refresh(exp: number): Promise<void> {
    const source = this.opts.token
    if (typeof source !== "function") return
    let fresh: string | undefined
    try {
      fresh = await source()
    } catch {
      fresh = undefined
    }
    if (this.ended || this.ws === undefined) return
    if (fresh === undefined || fresh === this.token || (tokenLifetime(fresh)?.exp ?? 0) <= exp) {
      // Nothing newer yet: ask again shortly, for as long as the current token lasts.
      if (Date.now() / 1000 < exp) this.refreshTimer = setTimeout(() => void this.refresh(exp), 5_000)
      return
    }
    this.token = fresh
    if (this.ws.readyState === 1) this.ws.send(encodePeerAuth({ t: "token", token: fresh }))
    this.scheduleRefresh()
  }

  private stopRefresh(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer)
    this.refreshTimer = undefined
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat)
    this.heartbeat = undefined
  }
}
