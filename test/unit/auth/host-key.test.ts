// `vdrelay host-key` and the bridge's host key file: made once with mode 0600, the same thumbprint printed on every
// run, refused when others can read it, and a key whose proofs the relay's check accepts.
import { chmod, mkdtemp, stat } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "vitest"
import { checkProof, newNonce } from "../../../src/auth/proof.ts"
import { loadHostKey, main, tokenHostKey } from "../../../src/bridge/host-key.ts"

const run = async (args: string[]) => {
  let out = ""
  let err = ""
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) }, {})
  return { code, out, err }
}

it("makes the key once (0600), prints the same thumbprint every time, and the key proves to the relay's check", async () => {
  const file = join(await mkdtemp(join(tmpdir(), "vdrelay-hostkey-")), "etc", "host-key.jwk")
  const first = await run(["--file", file])
  expect(first).toMatchObject({ code: 0, err: "" })
  expect(first.out).toMatch(/^[A-Za-z0-9_-]{43}\n$/)
  expect((await stat(file)).mode & 0o777).toBe(0o600)
  expect((await run(["--file", file])).out).toBe(first.out)
  const key = await loadHostKey(file)
  if (key instanceof Error) throw key
  const nonce = newNonce()
  expect(await checkProof(await key.prove("vm-1", nonce), { jkt: first.out.trim(), vm: "vm-1", nonce })).toBeUndefined()
})

it("refuses a key file others can read", async () => {
  const file = join(await mkdtemp(join(tmpdir(), "vdrelay-hostkey-")), "host-key.jwk")
  expect((await run(["--file", file])).code).toBe(0)
  await chmod(file, 0o644)
  const r = await run(["--file", file])
  expect(r.code).toBe(1)
  expect(r.err).toContain("readable by others")
})

it("reads the host key a token names without verifying it (and none from a token without cnf)", () => {
  const seg = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url")
  expect(tokenHostKey(`${seg({ alg: "EdDSA" })}.${seg({ cnf: { jkt: "x".repeat(43) } })}.sig`)).toBe("x".repeat(43))
  expect(tokenHostKey(`${seg({ alg: "HS256" })}.${seg({ vm: "v" })}.sig`)).toBeUndefined()
  expect(tokenHostKey("garbage")).toBeUndefined()
})
