// The bridge host's own Ed25519 key (docs/security.md, "Bridge host keys"): made once at install by
// `vdrelay host-key` (mode 0600, never overwritten, never sent anywhere), named by its thumbprint in this host's bridge
// tokens (`vdrelay token --jkt`), and used to answer the relay's challenge on every tunnel connect. A copy of a bridge
// token is useless without this file.
import { mkdir, readFile, stat, writeFile } from "node:fs/promises"
import { dirname } from "node:path"
import { parseArgs } from "node:util"
import { decodeBase64url } from "../auth/base64url.ts"
import { generateKeyPair, importPrivateKey, isEd25519Private, thumbprint, type PrivateJwk } from "../auth/jwk.ts"
import { signProof } from "../auth/proof.ts"

export const DEFAULT_HOST_KEY_FILE = "/etc/vdrelay/host-key.jwk"

/** Where this host's key lives: VDRELAY_HOST_KEY_FILE, else the default. */
export const hostKeyFile = (env: Readonly<Record<string, string | undefined>> = process.env): string =>
  env.VDRELAY_HOST_KEY_FILE !== undefined && env.VDRELAY_HOST_KEY_FILE !== "" ? env.VDRELAY_HOST_KEY_FILE : DEFAULT_HOST_KEY_FILE

export interface HostKey {
  /** RFC 7638 thumbprint: what bridge tokens name as `cnf.jkt`. */
  readonly jkt: string
  /** Signs the relay's challenge for `vm` (src/auth/proof.ts): the `proof` frame's key and signature. */
  readonly prove: (vm: string, nonce: string) => Promise<{ readonly key: string; readonly sig: Uint8Array }>
}

/** Loads the key; an Error (never key material) when it is missing, unreadable, not a private Ed25519 JWK, or readable by others. */
export const loadHostKey = async (file: string): Promise<HostKey | Error> => {
  let text: string
  try {
    // Like ssh with its identity files: a key others can read is no longer only this host's.
    if (((await stat(file)).mode & 0o077) !== 0) return new Error(`host key ${file} is readable by others (chmod 600 it)`)
    text = await readFile(file, "utf8")
  } catch (e) {
    return new Error(`host key ${file}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"} (create it with 'vdrelay host-key')`)
  }
  let jwk: unknown
  try {
    jwk = JSON.parse(text)
  } catch {
    return new Error(`host key ${file} is not JSON`)
  }
  if (!isEd25519Private(jwk)) return new Error(`host key ${file} is not an Ed25519 private JWK`)
  const key = await importPrivateKey(jwk)
  return { jkt: await thumbprint(jwk), prove: async (vm, nonce) => ({ key: jwk.x, sig: await signProof(key, vm, nonce) }) }
}

/** Creates the key file (0600, directory 0700 if it has to be made); an Error if it exists. */
export const createHostKey = async (file: string): Promise<PrivateJwk | Error> => {
  const { privateJwk } = await generateKeyPair()
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    await writeFile(file, `${JSON.stringify(privateJwk)}\n`, { mode: 0o600, flag: "wx" })
  } catch (e) {
    return new Error(`cannot create ${file}: ${(e as NodeJS.ErrnoException).code ?? "error"}`)
  }
  return privateJwk
}

/**
 * The `cnf.jkt` a bridge token names, read from its payload without verifying it (the bridge trusts the relay, not
 * the token, to verify; it only needs to know whether a proof will be asked for). undefined: no host key named.
 */
export const tokenHostKey = (token: string): string | undefined => {
  const payload = decodeBase64url(token.split(".")[1] ?? "")
  if (payload === null) return undefined
  try {
    const jkt = (JSON.parse(new TextDecoder().decode(payload)) as { cnf?: { jkt?: unknown } }).cnf?.jkt
    return typeof jkt === "string" ? jkt : undefined
  } catch {
    return undefined
  }
}

const USAGE = `usage: vdrelay host-key [--file F]

Makes this bridge host's key if it does not exist yet (mode 0600; default ${DEFAULT_HOST_KEY_FILE}, or
VDRELAY_HOST_KEY_FILE), then prints its thumbprint: pass it to 'vdrelay token --role bridge --jkt THUMBPRINT'.
The private key never leaves this file; the bridge signs the relay's challenge with it on every connect.
`

interface Io {
  readonly out: (s: string) => void
  readonly err: (s: string) => void
}

const defaultIo: Io = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) }

export const main = async (args: ReadonlyArray<string>, io: Io = defaultIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> => {
  let values
  try {
    values = parseArgs({ args: [...args], options: { file: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false }).values
  } catch (e) {
    io.err(`vdrelay host-key: ${(e as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    io.out(USAGE)
    return 0
  }
  const file = values.file ?? hostKeyFile(env)
  let key = await loadHostKey(file)
  if (key instanceof Error && (await stat(file).then(() => true, () => false)) === false) {
    const made = await createHostKey(file)
    if (made instanceof Error) {
      io.err(`vdrelay host-key: ${made.message}\n`)
      return 1
    }
    key = await loadHostKey(file)
  }
  if (key instanceof Error) {
    io.err(`vdrelay host-key: ${key.message}\n`)
    return 1
  }
  io.out(`${key.jkt}\n`)
  return 0
}
