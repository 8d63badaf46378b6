// One logical connection to the relay over successive WebSockets: token in Sec-WebSocket-Protocol, binary frames,
// exponential backoff with jitter between attempts, a heartbeat that notices a dead link. Knows nothing of the protocol
// beyond bytes; the session decides what a close means.
import { LINK_PONG } from "../link/heartbeat.ts"

/** The subprotocol the relay speaks; the token travels as a second offered subprotocol, never in the URL. */
export const SUBPROTOCOL = "vdrelay.v1"
export const TOKEN_PROTOCOL_PREFIX = "vdrelay.token."

export interface ReconnectOptions {
  /** First delay, ms (default 250). */
  readonly minDelayMs?: number
  /** Longest delay, ms (default 10 000). */
  readonly maxDelayMs?: number
  /** Growth per failed attempt (default 2). */
  readonly factor?: number
  /** Attempts in a row before giving up (default unlimited). */
  readonly maxAttempts?: number
}

export type TokenSource = string | (() => string | Promise<string>)

export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  readonly protocol: string
  send(data: Uint8Array | string): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { readonly data: unknown }) => void) | null
  onclose: ((ev: { readonly code: number; readonly reason: string; readonly wasClean?: boolean }) => void) | null
  onerror: ((ev: unknown) => void) | null
}
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike

export interface SocketHandlers {
  readonly opened: (ws: WebSocketLike) => void
  readonly frame: (bytes: Uint8Array) => void
  /** The relay's edge answered a heartbeat (the one text frame of the link). */
  readonly pong: () => void
  readonly closed: (code: number, reason: string) => void
}

/** Turns http(s) URLs into ws(s) ones so an app can pass its page origin. */
export const toWebSocketUrl = (url: string): string => url.replace(/^http(s?):/i, "ws$1:")

export const backoffDelay = (attempt: number, o: ReconnectOptions, random: () => number = Math.random): number => {
  const base = Math.min(o.maxDelayMs ?? 10_000, (o.minDelayMs ?? 250) * (o.factor ?? 2) ** attempt)
  // Full jitter in the upper half: clients cut off together do not come back together.
  return Math.round(base / 2 + (random() * base) / 2)
}

export const tokenProtocols = (token: string): string[] => [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`]

/** One WebSocket attempt; resolves once open or rejects with the close that prevented it. */
export const openSocket = async (
  Ctor: WebSocketConstructor,
  url: string,
  token: TokenSource,
  handlers: SocketHandlers,
): Promise<WebSocketLike> => {
  const t = typeof token === "function" ? await token() : token
  return new Promise((resolve, reject) => {
    let opened = false
    let errorText = ""
    const ws = new Ctor(toWebSocketUrl(url), tokenProtocols(t))
    ws.binaryType = "arraybuffer"
    ws.onopen = () => {
      opened = true
      resolve(ws)
      handlers.opened(ws)
    }
    ws.onmessage = (ev) => {
      const d = ev.data
      if (d instanceof ArrayBuffer) handlers.frame(new Uint8Array(d))
      else if (ArrayBuffer.isView(d)) handlers.frame(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))
      else if (d === LINK_PONG) handlers.pong()
      else handlers.frame(new Uint8Array(0)) // other text frames are not part of the link: let the decoder reject them
    }
    const fail = (code: number, reason: string): void => {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null
      reject(new Error(`the WebSocket did not open (code ${code}${reason ? `, ${reason}` : ""}${errorText ? `, ${errorText}` : ""})`))
    }
    // Browsers say nothing about a refused upgrade; Node's WebSocket says something in the error's message, and may
    // fire no close event after it.
    ws.onerror = (ev) => {
      const m = (ev as { message?: unknown }).message ?? (ev as { error?: { message?: unknown } }).error?.message
      if (typeof m === "string") errorText = m
      if (!opened) fail(1006, "")
    }
    ws.onclose = (ev) => {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null
      if (opened) handlers.closed(ev.code, ev.reason)
      else fail(ev.code, ev.reason)
    }
  })
}

export const defaultWebSocket = (): WebSocketConstructor | undefined =>
  (globalThis as { WebSocket?: unknown }).WebSocket as WebSocketConstructor | undefined
