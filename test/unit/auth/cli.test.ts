// `vdrelay token`: argument checking, key sources, and that the printed token verifies with the right claims.
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "vitest"
import { main } from "../../../src/auth/cli.ts"
import { verifyToken } from "../../../src/auth/token.ts"

const KEY = "0123456789abcdef0123456789abcdef-cli"
const run = async (args: string[], env: Record<string, string> = {}) => {
  let out = ""
  let err = ""
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s), env })
  return { code, out, err }
}

it("prints one token that verifies with the requested claims (key from the environment)", async () => {
  const r = await run(["--tenant", "acme", "--vm", "vm-1", "--role", "bridge", "--ttl", "120"], { VDRELAY_SIGNING_KEY: KEY })
  expect(r).toMatchObject({ code: 0, err: "" })
  expect(r.out).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/)
  const v = await verifyToken(KEY, r.out.trim())
  expect(v).toMatchObject({ _tag: "Ok", claims: { tenant: "acme", vm: "vm-1", role: "bridge" } })
  if (v._tag === "Ok") expect(v.claims.exp - v.claims.iat).toBe(120)
})

it("reads the key from --key-file (ignoring its trailing newline) and marks single-use tokens", async () => {
  const file = join(await mkdtemp(join(tmpdir(), "vdrelay-key-")), "key")
  await writeFile(file, `${KEY}\n`)
  const r = await run(["--tenant", "t", "--vm", "v", "--role", "viewer", "--ttl", "5", "--single-use", "--key-file", file])
  expect(r.code).toBe(0)
  expect(await verifyToken(KEY, r.out.trim())).toMatchObject({ claims: { once: true } })
})

it.each([
  [["--vm", "v", "--role", "viewer", "--ttl", "5"], "--tenant"],
  [["--tenant", "a/b", "--vm", "v", "--role", "viewer", "--ttl", "5"], "--tenant"],
  [["--tenant", "t", "--vm", "v", "--role", "root", "--ttl", "5"], "--role"],
  [["--tenant", "t", "--vm", "v", "--role", "viewer", "--ttl", "-5"], "--ttl"],
  [["--tenant", "t", "--vm", "v", "--role", "viewer", "--ttl", "1.5"], "--ttl"],
  [["--tenant", "t", "--vm", "v", "--role", "viewer", "--ttl", "5", "--bogus"], "bogus"],
])("refuses %j with exit code 2 and prints nothing on stdout", async (args, mention) => {
  const r = await run(args, { VDRELAY_SIGNING_KEY: KEY })
  expect(r).toMatchObject({ code: 2, out: "" })
  expect(r.err).toContain(mention)
})

it("refuses a missing or short key, and never echoes the key", async () => {
  const args = ["--tenant", "t", "--vm", "v", "--role", "viewer", "--ttl", "5"]
  expect(await run(args)).toMatchObject({ code: 2, out: "" })
  const short = await run(args, { VDRELAY_SIGNING_KEY: "tiny-secret" })
  expect(short).toMatchObject({ code: 2, out: "" })
  expect(short.err).not.toContain("tiny-secret")
  expect((await run([...args, "--key-file", "/nonexistent/key"], {})).err).toContain("ENOENT")
})

it("signs EdDSA with a private JWK key file, with the bridge host's thumbprint as cnf.jkt", async () => {
  const { generateKeyPair, parseJwks, thumbprint } = await import("../../../src/auth/jwk.ts")
  const signing = await generateKeyPair("k-2026")
  const host = await generateKeyPair()
  const jkt = await thumbprint(host.publicJwk)
  const file = join(await mkdtemp(join(tmpdir(), "vdrelay-cli-")), "signing.jwk")
  await writeFile(file, `${JSON.stringify(signing.privateJwk)}\n`)
  const r = await run(["--tenant", "acme", "--vm", "vm-1", "--role", "bridge", "--ttl", "120", "--jkt", jkt, "--key-file", file])
  expect(r).toMatchObject({ code: 0, err: "" })
  const jwks = parseJwks(JSON.stringify({ keys: [signing.publicJwk] }))
  if (jwks instanceof Error) throw jwks
  expect(await verifyToken({ jwks }, r.out.trim())).toMatchObject({ _tag: "Ok", kid: "k-2026", claims: { role: "bridge", cnf: { jkt } } })
  expect((await run(["--tenant", "acme", "--vm", "vm-1", "--role", "viewer", "--ttl", "9", "--jkt", jkt, "--key-file", file])).code).toBe(2)
})

it("mints tenant-wide admin tokens only with vm '*', and '*' for no other role", async () => {
  const ok = await run(["--tenant", "acme", "--vm", "*", "--role", "admin", "--ttl", "60"], { VDRELAY_SIGNING_KEY: KEY })
  expect(ok.code).toBe(0)
  expect(await verifyToken(KEY, ok.out.trim())).toMatchObject({ _tag: "Ok", claims: { role: "admin", vm: "*" } })
  expect((await run(["--tenant", "acme", "--vm", "vm-1", "--role", "admin", "--ttl", "60"], { VDRELAY_SIGNING_KEY: KEY })).code).toBe(2)
  expect((await run(["--tenant", "acme", "--vm", "*", "--role", "operator", "--ttl", "60"], { VDRELAY_SIGNING_KEY: KEY })).code).toBe(2)
})
