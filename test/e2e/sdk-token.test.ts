// The SDK's token handling against the real Worker bundle in workerd (issue 14): with a token source, a fresh token
// goes over the link before the current one expires and the link lives on without a reconnect; with a fixed token the
// link ends at expiry (close 4401) and the session ends reporting "auth" instead of retrying; after a revocation a
// token source gets exactly one fresh try, then the session ends with "auth".
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect, type Session } from "../../src/client/index.ts"
import type { CloseInfo, ConnectionState } from "../../src/client/types.ts"
import { startWorker, type LocalWorker } from "../harness/worker.ts"

let worker: LocalWorker
const SKEW = 1
const nowS = () => Math.floor(Date.now() / 1000)
const fast = { reconnect: { minDelayMs: 10, maxDelayMs: 50 } }

beforeAll(async () => {
  worker = await startWorker({ vars: { VDRELAY_CLOCK_SKEW_SECONDS: String(SKEW) } })
})
afterAll(async () => {
  await worker?.stop()
})

const watch = (s: Session) => {
  const states: ConnectionState[] = []
  const closes: CloseInfo[] = []
  s.on("state", (x) => states.push(x))
  s.on("close", (c) => closes.push(c))
  const ended = new Promise<CloseInfo>((done) => s.on("close", (c) => !c.reconnecting && done(c)))
  return { states, closes, ended }
}

describe("SDK tokens", () => {
  it("a token source: fresh tokens go over the link before expiry, and the link outlives them without reconnecting", async () => {
    const issued: number[] = []
    const source = async () => {
      const token = await worker.mint({ tenant: "acme", vm: "vm-sdk-1", role: "viewer", ttl: 8 })
      issued.push(nowS())
      return token
    }
    const session = await connect({ url: `${worker.url}/v1/vms/vm-sdk-1/console`, token: source, role: "viewer", ...fast })
    const w = watch(session)
    const firstEnd = (issued[0]! + 8 + SKEW) * 1000
    // Sleep past the first token's end: only a link refreshed over itself is still open then.
    await new Promise((r) => setTimeout(r, firstEnd - Date.now() + 1_000))
    expect(session.state).toBe("open")
    expect(w.states).toEqual([])
    expect(issued.length).toBeGreaterThanOrEqual(2)
    await session.close()
  })

  it("a fixed token: the link ends at expiry with 4401 and the session ends with reason auth, without retrying", async () => {
    const token = await worker.mint({ tenant: "acme", vm: "vm-sdk-2", role: "viewer", ttl: 2 })
    const session = await connect({ url: `${worker.url}/v1/vms/vm-sdk-2/console`, token, role: "viewer", ...fast })
    const w = watch(session)
    const end = await w.ended
    expect(end).toMatchObject({ code: 4401, reconnecting: false, error: { reason: "auth" } })
    expect(w.states).toEqual(["closed"])
  })

  it("revoked: a token source gets one fresh try, which the relay refuses, then the session ends with reason auth", async () => {
    let calls = 0
    const source = () => {
      calls++
      return worker.mint({ tenant: "acme", vm: "vm-sdk-3", role: "viewer", ttl: 300 })
    }
    const session = await connect({ url: `${worker.url}/v1/vms/vm-sdk-3/console`, token: source, role: "viewer", ...fast })
    const w = watch(session)
    // Revoke every token of the VM issued before an hour from now (the source's next tokens included).
    const cut = nowS() + 3600
    const operator = await worker.mint({ tenant: "acme", vm: "vm-sdk-3", role: "operator", now: cut, nbf: nowS() })
    const res = await fetch(`${worker.url}/v1/vms/vm-sdk-3/revocations`, { method: "POST", headers: { Authorization: `Bearer ${operator}` }, body: JSON.stringify({ issuedBefore: cut }) })
    expect(res.status).toBe(200)
    const end = await w.ended
    expect(end).toMatchObject({ reconnecting: false, error: { reason: "auth" } })
    expect(w.closes[0]).toMatchObject({ code: 4401, reconnecting: true })
    expect(calls).toBe(2)
    expect(session.state).toBe("closed")
  })
})
