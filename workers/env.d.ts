// Bindings `wrangler types` cannot see: secrets (set with `wrangler secret put`, or .dev.vars locally).
interface VdrelaySecrets {
  /** HS256 signing key for tokens (≥ 32 bytes). */
  readonly VDRELAY_SIGNING_KEY?: string
}
interface Env extends VdrelaySecrets {}
declare namespace Cloudflare {
  interface Env extends VdrelaySecrets {}
}
