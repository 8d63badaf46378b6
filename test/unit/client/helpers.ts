// Shared set-up for the SDK tests: a fake relay and a session connected to it through a real WebSocket.
import { connect, type ConnectOptions, type Session } from "../../../src/client/index.ts"
import type { RelayToClient } from "../../../src/link/types.ts"
import { concatBytes } from "../../../src/protocol/bytes.ts"
import { type FakeLink, FakeRelay } from "./fake-relay.ts"

export interface Opened {
  readonly relay: FakeRelay
  readonly link: FakeLink
  readonly session: Session
  readonly done: () => Promise<void>
}

export const open = async (
  welcome: Partial<Extract<RelayToClient, { t: "welcome" }>> = {},
  opts: Partial<ConnectOptions> = {},
  relay?: FakeRelay,
): Promise<Opened> => {
  const r = relay ?? (await FakeRelay.start())
  const pending = connect({ url: r.url, token: "tok.en.sig", heartbeatMs: 0, ...opts })
  const link = await r.helloed()
  link.welcome(welcome)
  const session = await pending
  return {
    relay: r,
    link,
    session,
    // Every test ends by checking that the SDK never overspent its credit nor sent a frame the relay cannot decode.
    done: async () => {
      await session.close()
      await r.close()
      const violations = r.links.flatMap((l) => l.violations)
      if (violations.length > 0) throw new Error(`client link violations: ${violations.join("; ")}`)
    },
  }
}

/** Resolves once `cond` holds, checked after each event turn (no timers: the test's own timeout bounds it). */
export const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setImmediate(r))
}

export const u32 = (...words: number[]): Uint8Array => {
  const out = new Uint8Array(4 * words.length)
  const v = new DataView(out.buffer)
  words.forEach((w, i) => v.setUint32(4 * i, w >>> 0, true))
  return out
}

export const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts)
