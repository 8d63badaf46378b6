#!/usr/bin/env node
// vdrelay command line: `vdrelay token …` mints tokens, `keygen` and `host-key` make keys, `vdrelay bridge …` runs the
// host bridge.
// Sources are TypeScript run through tsx's loader (no build step); Node ≥ 22.12.
import { register } from "tsx/esm/api"

register()
const [command, ...args] = process.argv.slice(2)
const commands = {
  token: "../src/auth/cli.ts",
  keygen: "../src/auth/keygen-cli.ts",
  "host-key": "../src/bridge/host-key.ts",
  bridge: "../src/bridge/cli.ts",
}
if (command === undefined || command === "--help" || command === "-h" || !(command in commands)) {
  const out = command === undefined || command.startsWith("-") ? process.stdout : process.stderr
  out.write(`usage: vdrelay <command> [options]

commands:
  token     mint a signed token (tenant, vm, role, ttl) for consoles, bridges and operators
  keygen    make an Ed25519 token signing key (private JWK file; prints the public JWK for VDRELAY_JWKS)
  host-key  make this bridge host's key if needed and print its thumbprint (for bridge tokens' --jkt)
  bridge    run the host bridge: VM chardev sockets -> outbound tunnels to the relay

Run 'vdrelay <command> --help' for a command's options.
`)
  process.exit(command === undefined || command.startsWith("-") ? 0 : 2)
}
const mod = await import(new URL(commands[command], import.meta.url).href)
process.exitCode = await mod.main(args)
