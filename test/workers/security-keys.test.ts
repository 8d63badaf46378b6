// The key matrix of the edge (issue 14), in workerd's own WebCrypto: EdDSA tokens of every key in VDRELAY_JWKS are
// accepted; a missing or unknown kid, a retired key, a key of the wrong type, keys carried by the token and the
// algorithm-confusion forgery (HS256 with a public key as the secret) are refused with 401 before any Durable Object
// exists.
import { SELF } from "cloudflare:test"
import { describe, expect, it, vi } from "vitest"
import { encodeBase64url } from "../../src/auth/base64url.ts"
import { signToken, type Claims } from "../../src/auth/token.ts"
import { mintEd, nowS } from "./auth-helpers.ts"
import { doCount, upgrade, ORIGIN } from "./helpers.ts"
import { EC_KEY, TEST_JWKS, TEST_KEYS } from "./test-keys.ts"

const utf8 = new TextEncoder()
const seg = (v: unknown): string => encodeBase64url(utf8.encode(JSON.stringify(v)))
const claims = (vm: string): Claims => ({ tenant: "acme", vm, role: "controller", iat: nowS(), nbf: nowS(), exp: nowS() + 60, jti: "keys-matrix-0001" })

/** Expects the token refused with 401 (and `reason` in the body) and no Durable Object created by the attempt. */
const refused = async (token: string, reason: string) => {
  const before = await doCount()
  const res = await upgrade("/v1/vms/vm-keys-x/console", { token, via: "bearer" })
  expect(res.status).toBe(401)
  expect(await res.text()).toContain(reason)
  expect(await doCount()).toBe(before)
}

describe("EdDSA key set at the edge", () => {
  it.each([["current", TEST_KEYS.current], ["next", TEST_KEYS.next]] as const)("accepts a token of the %s key (rotation overlap)", async (_n, key) => {
    const res = await upgrade("/v1/vms/vm-keys-ok/console", { token: await mintEd({ tenant: "acme", vm: "vm-keys-ok", role: "viewer" }, key), via: "bearer" })
    expect(res.status).toBe(101)
    res.webSocket!.accept()
    res.webSocket!.close(1000)
  })

  it("refuses a token of a key removed from the set (unknown-key)", async () => {
    await refused(await mintEd({ tenant: "acme", vm: "vm-keys-x", role: "controller" }, TEST_KEYS.retired), "unknown-key")
  })

  it("refuses a missing kid (unknown-key) and a kid naming a key of another type (wrong-key-type)", async () => {
    const [, p, s] = (await signToken(TEST_KEYS.current, claims("vm-keys-x"))).split(".")
    await refused(`${seg({ alg: "EdDSA", typ: "JWT" })}.${p}.${s}`, "unknown-key")
    await refused(`${seg({ alg: "EdDSA", typ: "JWT", kid: EC_KEY.kid })}.${p}.${s}`, "wrong-key-type")
  })

  it("refuses algorithm confusion: HS256 keyed with a public key or the published key set", async () => {
    for (const secret of [TEST_KEYS.current.x.padEnd(32, "="), TEST_JWKS]) {
      const forged = await signToken(secret, claims("vm-keys-x"))
      await refused(forged, "bad-signature")
      const [, p, s] = forged.split(".")
      await refused(`${seg({ alg: "HS256", typ: "JWT", kid: TEST_KEYS.current.kid })}.${p}.${s}`, "wrong-key-type")
    }
  })

  it("refuses keys carried by the token itself (jwk header)", async () => {
    const [, p, s] = (await signToken(TEST_KEYS.retired, claims("vm-keys-x"))).split(".")
    const { d: _d, ...pub } = TEST_KEYS.retired
    await refused(`${seg({ alg: "EdDSA", kid: TEST_KEYS.retired.kid, jwk: pub })}.${p}.${s}`, "unsupported-alg")
  })

  it("an operator token of the next key reads status (every route verifies the same way)", async () => {
    const token = await mintEd({ tenant: "acme", vm: "vm-keys-ok", role: "operator" }, TEST_KEYS.next)
    expect((await SELF.fetch(`${ORIGIN}/v1/vms/vm-keys-ok/status`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200)
  })
})

describe("audit lines", () => {
  it("a join and a refusal each leave one audit line with the key id, and no line carries a token or its signature", async () => {
    const lines: string[] = []
    const spies = (["log", "warn", "error"] as const).map((level) => vi.spyOn(console, level).mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(" "))))
    try {
      const good = await mintEd({ tenant: "acme", vm: "vm-audit", role: "viewer" }, TEST_KEYS.next)
      const res = await upgrade("/v1/vms/vm-audit/console", { token: good, via: "bearer" })
      expect(res.status).toBe(101)
      res.webSocket!.accept()
      res.webSocket!.close(1000)
      const retired = await mintEd({ tenant: "acme", vm: "vm-audit", role: "viewer" }, TEST_KEYS.retired)
      expect((await upgrade("/v1/vms/vm-audit/console", { token: retired, via: "bearer" })).status).toBe(401)
      const audit = lines.filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(audit.filter((a) => a.event === "join")).toEqual([expect.objectContaining({ vm: "vm-audit", role: "viewer", kid: TEST_KEYS.next.kid })])
      expect(audit.filter((a) => a.event === "refused")).toEqual([expect.objectContaining({ vm: "vm-audit", status: 401, reason: "unknown-key", kid: TEST_KEYS.retired.kid })])
      for (const token of [good, retired]) for (const part of [token, token.split(".")[2]!]) expect(lines.filter((l) => l.includes(part))).toEqual([])
    } finally {
      for (const s of spies) s.mockRestore()
    }
  })
})
