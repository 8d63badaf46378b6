// Five projects: `unit` (pure code on Node: protocol, link, session, auth, bridge, client), `workers` (the Worker and
// Durable Object inside real workerd through the Workers Vitest plugin; `workers-limits` the same with a small frame bucket), `e2e` (real processes: workerd, the bridge,
// the real Debian spice-vdagent, Chromium), `vm` (the real agent inside a real QEMU guest); e2e and vm run one file at
// a time on this 2-core machine.
import { cloudflareTest } from "@cloudflare/vitest-plugin"
import { defineConfig } from "vitest/config"
import { TEST_JWKS } from "./test/workers/test-keys.ts"

// The workers project trusts EdDSA keys (test/workers/test-keys.ts) and, like every development stack, the HS256
// secret; a 2 s clock skew keeps the tests of token expiry on open links short.
const WORKERS_TEST_BINDINGS = {
  VDRELAY_SIGNING_KEY: "test-signing-key-0123456789abcdef0123456789abcdef",
  VDRELAY_JWKS: TEST_JWKS,
  VDRELAY_CLOCK_SKEW_SECONDS: "2",
  VDRELAY_DEMO_CONSOLE: "on",
}

const LIMITS_TEST_LINK_FRAMES = "400/20"

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node", testTimeout: 60_000 },
      },
      {
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: WORKERS_TEST_BINDINGS } })],
        test: { name: "workers", include: ["test/workers/**/*.test.ts"], exclude: ["test/workers/rate-limit.test.ts"], testTimeout: 60_000 },
      },
      {
        // The frame-rate limit with a small bucket: a flood trips it whatever speed this machine handles frames at
        // (with the production 4000/2000 it trips only when the object keeps up with > 2,000 frames/s).
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: { ...WORKERS_TEST_BINDINGS, VDRELAY_LINK_FRAMES: LIMITS_TEST_LINK_FRAMES } } })],
        test: { name: "workers-limits", include: ["test/workers/rate-limit.test.ts"], testTimeout: 60_000 },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Real QEMU guests running the real agent (test/vm, docs/testing-vm.md): one VM per file, booted in beforeAll
        // (~9 s under TCG), files one at a time.
        test: {
          name: "vm",
          include: ["test/vm/**/*.test.ts"],
          environment: "node",
          fileParallelism: false,
          // A reboot inside a test (system_reset, poweroff + start) takes 10–60 s under TCG depending on load.
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
})
