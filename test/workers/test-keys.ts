// Fixed Ed25519 keys of the workers test project (never used anywhere else): the relay trusts current and next (a
// rotation overlap) and an EC key it cannot use; retired is a key removed from the set; host and otherHost are bridge
// host keys. vitest.config.ts builds the VDRELAY_JWKS binding from the public halves.
import type { PrivateJwk } from "../../src/auth/jwk.ts"

export const TEST_KEYS = {
  current: {
    kty: "OKP",
    crv: "Ed25519",
    x: "ilWD92KhDEOBfrD6wPMTBes8qTnJ2Yc1v1JlKvRWSvQ",
    d: "Xbbv0qKnld14kPw7Y_txjyd5suY-LrLu0NqweKLmyJg",
    kid: "test-2026-11",
    alg: "EdDSA",
    use: "sig"
  },
  next: {
    kty: "OKP",
    crv: "Ed25519",
    x: "oROvv0YIBe9dIZ3Doxeft336cbVfCAUKizF3P2Hp984",
    d: "8qcm4fjmtgfuHF2rSJY7v40h378hsZVPoRg79WcC9dY",
    kid: "test-2026-12",
    alg: "EdDSA",
    use: "sig"
  },
  retired: {
    kty: "OKP",
    crv: "Ed25519",
    x: "KWfoRgBwmUTG_fpfzb_0dfIMF1BfL4nZrY6xdXEiL9w",
    d: "gbk4RbhexiQD5VqgpG4pxJ01A3sGqYLznGbrskS-mcc",
    kid: "test-2026-10",
    alg: "EdDSA",
    use: "sig"
  },
  host: {
    kty: "OKP",
    crv: "Ed25519",
    x: "jhgSNYLDf0ysrzng0ovu-dWmntD_K4Q62KAJXB4fOnc",
    d: "srGrHH4XQsDVJj_BDBoR7hU4G7MMQciK05pZjuNROqg",
    kid: "w_zYJz9NsX79ypqy4l0JyMGmNz0aJMW95OnsMnFhWsw",
    alg: "EdDSA",
    use: "sig"
  },
  otherHost: {
    kty: "OKP",
    crv: "Ed25519",
    x: "pYhjKtTmpGJWTCy-RIvvZw9_B5rgz9hJ2wRZu8s64wI",
    d: "bOD6qlluk18ptUol-xXRp7IiCX3Gntrqj8r3TwVE2iI",
    kid: "VBONcL7bR6yypseugc34AjcmLIAszoJMOXMiUYRO6cA",
    alg: "EdDSA",
    use: "sig"
  }
} as const satisfies Record<string, PrivateJwk>

/** An EC P-256 public key (RFC 7515 appendix A.3): in the key set, but of a type the relay never verifies with. */
export const EC_KEY = { kty: "EC", crv: "P-256", kid: "test-ec", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" } as const

const pub = ({ kty, crv, x, kid }: PrivateJwk) => ({ kty, crv, x, kid, alg: "EdDSA", use: "sig" })

/** The JWKS the workers test project runs with. */
export const TEST_JWKS = JSON.stringify({ keys: [pub(TEST_KEYS.current), pub(TEST_KEYS.next), EC_KEY] })
