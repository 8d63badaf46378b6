// The two link protocols: frame types, msgpack codecs with validating decoders, and the close-code mapping.
export * from "./types.ts"
export * from "./client-codec.ts"
export * from "./bridge-codec.ts"
export * from "./close-codes.ts"
export * from "./auth-codec.ts"
export * from "./heartbeat.ts"
export { linkDecodeError, linkErrorOfDecode, MAX_NESTING, type LinkDecodeError, type LinkDecodeReason, type LinkDecoded } from "./codec.ts"
