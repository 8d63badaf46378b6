// `vdrelay token`: mints one signed token and prints it on stdout (and nothing else there, so it can be captured).
import { readFile } from "node:fs/promises"
import { parseArgs } from "node:util"
import { THUMBPRINT_PATTERN, isEd25519Private } from "./jwk.ts"
import { MIN_KEY_BYTES, NAME_PATTERN, TENANT_WIDE_VM, TOKEN_ROLES, mintToken, type SigningKey, type TokenRole } from "./token.ts"

const USAGE = `usage: vdrelay token --tenant T --vm V --role R --ttl SECONDS [--single-use] [--jkt THUMBPRINT] [--key-file F]

  --tenant T      tenant name ([A-Za-z0-9._-], at most 63 characters)
  --vm V          VM name (same alphabet); '*' for admin tokens
  --role R        controller | viewer (consoles), bridge (host bridge), operator (status, policy and revocation
                  API of one VM), admin (tenant-wide revocation only; --vm '*')
  --ttl SECONDS   lifetime in seconds
  --single-use    a join token the relay accepts once (replays are refused until it expires)
  --jkt THUMB     bridge tokens: thumbprint of the bridge host's key (printed by 'vdrelay host-key'); the bridge
                  must then prove it holds that key on every connect
  --key-file F    the signing key: an Ed25519 private JWK with a kid ('vdrelay keygen'; EdDSA, production), or
                  anything else as the HS256 shared secret of development stacks
                  (default: environment variable VDRELAY_SIGNING_KEY, HS256)

Prints the token on stdout. Treat it as a password: it is never logged by vdrelay.
`

interface Io {
  readonly out: (s: string) => void
  readonly err: (s: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
}

const defaultIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env }

/** A JSON object in the key file is a JWK (and must be a usable Ed25519 private key); anything else an HS256 secret. */
const keyOf = (text: string): SigningKey | Error => {
  if (!text.trimStart().startsWith("{")) {
    if (new TextEncoder().encode(text).length < MIN_KEY_BYTES) return new Error(`signing key shorter than ${MIN_KEY_BYTES} bytes`)
    return text
  }
  let jwk: unknown
  try {
    jwk = JSON.parse(text)
  } catch {
    return new Error("key file looks like JSON but does not parse")
  }
  if (!isEd25519Private(jwk) || typeof jwk.kid !== "string") return new Error("key file: not an Ed25519 private JWK with a kid")
  return jwk
}

const readKey = async (file: string | undefined, env: Io["env"]): Promise<SigningKey | Error> => {
  if (file === undefined) {
    const secret = env.VDRELAY_SIGNING_KEY
    return secret === undefined ? new Error("no signing key: pass --key-file or set VDRELAY_SIGNING_KEY") : keyOf(secret)
  }
  try {
    // A trailing newline is an artefact of how key files are written, not part of the key.
    return keyOf((await readFile(file, "utf8")).replace(/\r?\n$/, ""))
  } catch (e) {
    return new Error(`cannot read key file: ${(e as NodeJS.ErrnoException).code ?? "error"}`)
  }
}

export const main = async (args: ReadonlyArray<string>, io: Io = defaultIo): Promise<number> => {
  let values
  try {
    values = parseArgs({
      args: [...args],
      options: {
        tenant: { type: "string" },
        vm: { type: "string" },
        role: { type: "string" },
        ttl: { type: "string" },
        "single-use": { type: "boolean" },
        "key-file": { type: "string" },
        jkt: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (e) {
    io.err(`vdrelay token: ${(e as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    io.out(USAGE)
    return 0
  }
  const fail = (why: string): number => {
    io.err(`vdrelay token: ${why}\n`)
    return 2
  }
  const { tenant, vm, role, ttl } = values
  if (tenant === undefined || !NAME_PATTERN.test(tenant)) return fail("--tenant missing or not a valid name")
  if (role === undefined || !TOKEN_ROLES.includes(role as TokenRole)) return fail(`--role must be one of ${TOKEN_ROLES.join(", ")}`)
  if (vm === undefined || (role === "admin" ? vm !== TENANT_WIDE_VM : !NAME_PATTERN.test(vm))) {
    return fail(role === "admin" ? `admin tokens are tenant-wide: --vm '${TENANT_WIDE_VM}'` : "--vm missing or not a valid name")
  }
  const seconds = ttl !== undefined && /^[1-9][0-9]{0,9}$/.test(ttl) ? Number(ttl) : NaN
  if (!Number.isSafeInteger(seconds)) return fail("--ttl must be a positive number of seconds")
  const { jkt } = values
  if (jkt !== undefined && !THUMBPRINT_PATTERN.test(jkt)) return fail("--jkt must be a key thumbprint (43 base64url characters)")
  if (jkt !== undefined && role !== "bridge") return fail("--jkt is for bridge tokens")
  const key = await readKey(values["key-file"], io.env)
  if (key instanceof Error) return fail(key.message)
  const token = await mintToken(key, {
    tenant,
    vm,
    role: role as TokenRole,
    ttl: seconds,
    singleUse: values["single-use"] === true,
    ...(jkt !== undefined ? { jkt } : {}),
  })
  io.out(`${token}\n`)
  return 0
}
