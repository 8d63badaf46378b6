// `vdrelay keygen`: makes an Ed25519 token signing key for the operator's control plane. The private JWK goes to a new
// file (mode 0600, never overwritten); the public JWK is printed on stdout for the relay's key set (VDRELAY_JWKS).
import { writeFile } from "node:fs/promises"
import { parseArgs } from "node:util"
import { KID_PATTERN, generateKeyPair } from "./jwk.ts"

const USAGE = `usage: vdrelay keygen --out FILE [--kid KID]

  --out FILE   where to write the private key (JWK, mode 0600); an existing file is never overwritten
  --kid KID    key id put in token headers ([A-Za-z0-9._-], at most 64; default: the key's thumbprint)

Prints the public key (one JWK) on stdout: add it to the "keys" of VDRELAY_JWKS before tokens are signed with it.
`

interface Io {
  readonly out: (s: string) => void
  readonly err: (s: string) => void
}

const defaultIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }

export const main = async (args: ReadonlyArray<string>, io: Io = defaultIo): Promise<number> => {
  let values
  try {
    values = parseArgs({
      args: [...args],
      options: { out: { type: "string" }, kid: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (e) {
    io.err(`vdrelay keygen: ${(e as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    io.out(USAGE)
    return 0
  }
  if (values.out === undefined) {
    io.err(`vdrelay keygen: --out is required\n\n${USAGE}`)
    return 2
  }
  if (values.kid !== undefined && !KID_PATTERN.test(values.kid)) {
    io.err("vdrelay keygen: --kid must match [A-Za-z0-9._-]{1,64}\n")
    return 2
  }
  const { privateJwk, publicJwk } = await generateKeyPair(values.kid)
  try {
    await writeFile(values.out, `${JSON.stringify(privateJwk)}\n`, { mode: 0o600, flag: "wx" })
  } catch (e) {
    io.err(`vdrelay keygen: cannot create ${values.out}: ${(e as NodeJS.ErrnoException).code ?? "error"}\n`)
    return 1
  }
  io.out(`${JSON.stringify(publicJwk)}\n`)
  return 0
}
