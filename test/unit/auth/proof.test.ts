// Proof of possession of a bridge host key: only the holder of the private key whose thumbprint the token names can
// answer a challenge, and an answer holds for its own nonce and VM only (a replay on another link does not verify).
import { mkdtemp, readFile, stat } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "vitest"
import { generateKeyPair, importPrivateKey, parseJwks, thumbprint } from "../../../src/auth/jwk.ts"
import { main as keygen } from "../../../src/auth/keygen-cli.ts"
import { checkProof, newNonce, signProof } from "../../../src/auth/proof.ts"

const host = await generateKeyPair()
const thief = await generateKeyPair()
const jkt = await thumbprint(host.publicJwk)

it("a proof by the host key for this nonce and VM holds", async () => {
  const nonce = newNonce()
  const sig = await signProof(await importPrivateKey(host.privateJwk), "vm-1", nonce)
  expect(await checkProof({ key: host.publicJwk.x, sig }, { jkt, vm: "vm-1", nonce })).toBeUndefined()
})

it("another key is refused even with a valid signature of its own (wrong-key)", async () => {
  const nonce = newNonce()
  const sig = await signProof(await importPrivateKey(thief.privateJwk), "vm-1", nonce)
  expect(await checkProof({ key: thief.publicJwk.x, sig }, { jkt, vm: "vm-1", nonce })).toBe("wrong-key")
})

it("a replayed answer (another nonce) or one made for another VM is refused (bad-signature)", async () => {
  const nonce = newNonce()
  const sig = await signProof(await importPrivateKey(host.privateJwk), "vm-1", nonce)
  expect(await checkProof({ key: host.publicJwk.x, sig }, { jkt, vm: "vm-1", nonce: newNonce() })).toBe("bad-signature")
  expect(await checkProof({ key: host.publicJwk.x, sig }, { jkt, vm: "vm-2", nonce })).toBe("bad-signature")
  expect(await checkProof({ key: host.publicJwk.x, sig: sig.subarray(1) }, { jkt, vm: "vm-1", nonce })).toBe("malformed")
})

it("vdrelay keygen writes a 0600 private key once and prints a public key the relay's key set accepts", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vdrelay-keygen-"))
  const out = join(dir, "signing.jwk")
  let printed = ""
  const io = { out: (s: string) => (printed += s), err: () => {} }
  expect(await keygen(["--out", out, "--kid", "2026-12"], io)).toBe(0)
  expect((await stat(out)).mode & 0o777).toBe(0o600)
  expect(JSON.parse(await readFile(out, "utf8"))).toMatchObject({ kid: "2026-12", d: expect.any(String) })
  const pub = JSON.parse(printed)
  expect(pub).not.toHaveProperty("d")
  expect(parseJwks(JSON.stringify({ keys: [pub] }))).toBeInstanceOf(Map)
  expect(await keygen(["--out", out], io)).toBe(1) // never overwrites
})
