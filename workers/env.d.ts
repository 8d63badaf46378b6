// Bindings `wrangler types` cannot see: secrets (set with `wrangler secret put`, or .dev.vars locally) and optional
// settings. docs/security.md, "Keys"; docs/operations.md.
interface VdrelaySecrets {
  /** The token verification key set: a JWKS of Ed25519 public keys, each with a `kid` (secret or var). */
  readonly VDRELAY_JWKS?: string
  /**
   * HS256 shared secret (≥ 32 bytes): development and test stacks only. Setting it is what enables HS256; whoever
   * holds it (the Worker included) can mint any token, and bridge tokens signed with it need no host key.
   */
  readonly VDRELAY_SIGNING_KEY?: string
  /** Clock skew tolerated on token `exp`/`nbf`, seconds (default 30). */
  readonly VDRELAY_CLOCK_SKEW_SECONDS?: string
  /** "on" serves the demo console at / and /console (development stacks, demos); anything else: 404 there. */
  readonly VDRELAY_DEMO_CONSOLE?: string
  /** Frames per link as "burst/perSecond" (default "4000/2000"): a link that sends faster is closed 1008. */
  readonly VDRELAY_LINK_FRAMES?: string
}
interface Env extends VdrelaySecrets {}
declare namespace Cloudflare {
  interface Env extends VdrelaySecrets {}
}
