// Token minting and verification for consoles, bridges and operators (see docs/security.md).
export * from "./token.ts"
export * from "./jwk.ts"
export * from "./proof.ts"
export { decodeBase64url, encodeBase64url } from "./base64url.ts"
