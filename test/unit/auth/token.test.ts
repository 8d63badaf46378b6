// Token minting and verification: round trip, and every refusal (alg none, other algs, forged, expired, not yet
// valid, malformed, bad claims) with its typed reason.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeBase64url, encodeBase64url } from "../../../src/auth/base64url.ts"
import { mintToken, signToken, verifyToken, type Claims } from "../../../src/auth/token.ts"

const KEY = "k".repeat(32)
const OTHER = "o".repeat(32)
const NOW = 1_800_000_000
const utf8 = new TextEncoder()
const seg = (v: unknown): string => encodeBase64url(utf8.encode(JSON.stringify(v)))
const claims: Claims = { tenant: "acme", vm: "vm-1", role: "viewer", iat: NOW, nbf: NOW, exp: NOW + 60, jti: "abcdefgh12345678" }
const reason = async (token: string, now = NOW * 1000) => {
  const r = await verifyToken(KEY, token, { now })
  return r._tag === "Ok" ? "ok" : r.reason
}

describe("base64url", () => {
  it("round-trips any bytes and refuses non-canonical text", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
      expect(decodeBase64url(encodeBase64url(b))).toEqual(b)
    }))
    expect(decodeBase64url("AQ")).toEqual(Uint8Array.of(1))
    expect(decodeBase64url("AB")).toBeNull() // stray low bits
    expect(decodeBase64url("AB=")).toBeNull()
    expect(decodeBase64url("AF")).toBeNull() // stray low bits
    expect(decodeBase64url("A")).toBeNull()
    expect(decodeBase64url("A+B/")).toBeNull()
  })
})

describe("verifyToken", () => {
  it("accepts a minted token and returns exactly its claims", async () => {
    const token = await mintToken(KEY, { tenant: "acme", vm: "vm-1", role: "controller", ttl: 60, singleUse: true, now: NOW })
    const r = await verifyToken(KEY, token, { now: NOW * 1000 })
    expect(r).toMatchObject({ _tag: "Ok", claims: { tenant: "acme", vm: "vm-1", role: "controller", exp: NOW + 60, nbf: NOW, iat: NOW, once: true } })
    const plain = await mintToken(KEY, { tenant: "acme", vm: "vm-1", role: "bridge", ttl: 60, now: NOW })
    const p = await verifyToken(KEY, plain, { now: NOW * 1000 })
    expect(p._tag === "Ok" && "once" in p.claims).toBe(false)
  })

  it("refuses alg none, other algorithms and crit headers", async () => {
    const body = seg(claims)
    const good = await signToken(KEY, claims)
    const sig = good.split(".")[2]!
    expect(await reason(`${seg({ alg: "none", typ: "JWT" })}.${body}.`)).toBe("unsupported-alg")
    expect(await reason(`${seg({ typ: "JWT" })}.${body}.${sig}`)).toBe("unsupported-alg")
    expect(await reason(`${seg({ alg: "none", typ: "JWT" })}.${body}.${sig}`)).toBe("unsupported-alg")
    expect(await reason(`${seg({ alg: "HS512" })}.${body}.${sig}`)).toBe("unsupported-alg")
    expect(await reason(`${seg({ alg: "RS256" })}.${body}.${sig}`)).toBe("unsupported-alg")
    expect(await reason(`${seg({ alg: "HS256", crit: ["exp"] })}.${body}.${sig}`)).toBe("unsupported-alg")
  })

  it("refuses forged tokens: other key, edited claims, edited signature", async () => {
    expect(await reason(await signToken(OTHER, claims))).toBe("bad-signature")
    const [h, , s] = (await signToken(KEY, claims)).split(".")
    expect(await reason(`${h}.${seg({ ...claims, role: "controller" })}.${s}`)).toBe("bad-signature")
    const flipped = `${s![0] === "A" ? "B" : "A"}${s!.slice(1)}`
    expect(await reason(`${h}.${seg(claims)}.${flipped}`)).toBe("bad-signature")
  })

  it("refuses expired and not-yet-valid tokens, with 30 s of skew", async () => {
    const token = await signToken(KEY, claims)
    expect(await reason(token, (NOW + 60 + 29) * 1000)).toBe("ok")
    expect(await reason(token, (NOW + 60 + 30) * 1000)).toBe("expired")
    expect(await reason(token, (NOW - 30) * 1000)).toBe("ok")
    expect(await reason(token, (NOW - 31) * 1000)).toBe("not-yet-valid")
  })

  it("refuses claims that are missing, mistyped or out of range even when signed", async () => {
    for (const bad of [
      { ...claims, tenant: "a/b" },
      { ...claims, vm: "" },
      { ...claims, role: "admin" },
      { ...claims, exp: "soon" },
      { ...claims, exp: NOW },
      { ...claims, jti: "short" },
      { ...claims, once: false },
      { ...claims, tenant: undefined },
    ]) {
      expect(await reason(await signToken(KEY, bad as unknown as Claims))).toBe("invalid-claims")
    }
  })

  it("refuses malformed input without throwing", async () => {
    for (const t of ["", "a.b", "a.b.c.d", "x".repeat(5000), "..", `${seg([1])}.${seg(claims)}.AAAA`]) {
      expect(await reason(t)).toBe("malformed")
    }
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (t) => {
        expect(await reason(t)).not.toBe("ok")
      }),
      { numRuns: 300 },
    )
  })

  it("refuses to work with a short key", async () => {
    expect(await verifyToken("short", await signToken(KEY, claims))).toMatchObject({ reason: "bad-key" })
    await expect(signToken("short", claims)).rejects.toThrow()
  })
})
