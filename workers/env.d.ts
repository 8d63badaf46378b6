// Bindings `wrangler types` cannot see: secrets (set with `wrangler secret put`, or .dev.vars locally).
interface Env {
  /** HS256 signing key for tokens (≥ 32 bytes). */
  readonly VDRELAY_SIGNING_KEY?: string
}
