// The Worker's operations surface in workerd: /healthz is 200 only while the deployment can verify tokens (503 with
// the problem when the key set is missing, malformed or has no usable key), and the demo console is served only where
// VDRELAY_DEMO_CONSOLE is "on". Each case runs the Worker's fetch with the test bindings changed as an operator would.
import { env } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import worker from "../../workers/index.ts"
import { EC_KEY, TEST_JWKS } from "./test-keys.ts"

type Vars = { VDRELAY_JWKS?: string | undefined; VDRELAY_SIGNING_KEY?: string | undefined; VDRELAY_DEMO_CONSOLE?: string | undefined }

const get = (path: string, vars: Vars): Promise<Response> =>
  Promise.resolve(worker.fetch(new Request(`https://relay.test${path}`), { ...env, ...vars } as Env))

describe("/healthz", () => {
  it.each<[string, Vars]>([
    ["EdDSA keys and the HS256 secret", {}],
    ["EdDSA keys only", { VDRELAY_SIGNING_KEY: undefined }],
    ["the HS256 secret only", { VDRELAY_JWKS: undefined }],
  ])("is 200 ok with %s", async (_what, vars) => {
    const res = await get("/healthz", vars)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe("ok")
  })

  it.each<[string, Vars, string]>([
    ["no key at all", { VDRELAY_JWKS: undefined, VDRELAY_SIGNING_KEY: undefined }, "no-keys"],
    ["empty settings", { VDRELAY_JWKS: "", VDRELAY_SIGNING_KEY: "" }, "no-keys"],
    ["a JWKS that is not JSON", { VDRELAY_JWKS: "{keys:", VDRELAY_SIGNING_KEY: undefined }, "jwks-invalid"],
    ["a JWKS with a private key", { VDRELAY_JWKS: JSON.stringify({ keys: [{ ...JSON.parse(TEST_JWKS).keys[0], d: "AAAA" }] }), VDRELAY_SIGNING_KEY: undefined }, "jwks-invalid"],
    ["a JWKS of keys the relay cannot verify with", { VDRELAY_JWKS: JSON.stringify({ keys: [EC_KEY] }), VDRELAY_SIGNING_KEY: undefined }, "no-usable-key"],
    ["an HS256 secret shorter than 32 bytes", { VDRELAY_JWKS: undefined, VDRELAY_SIGNING_KEY: "short" }, "no-usable-key"],
  ])("is 503 with %s", async (_what, vars, problem) => {
    const res = await get("/healthz", vars)
    expect(res.status).toBe(503)
    expect(await res.text()).toBe(`unavailable: ${problem}\n`)
  })
})

describe("the demo console", () => {
  it.each(["/", "/console", "/console/console.js"])("%s is 404 unless VDRELAY_DEMO_CONSOLE is on", async (path) => {
    for (const off of [undefined, "", "off", "true"]) expect((await get(path, { VDRELAY_DEMO_CONSOLE: off })).status).toBe(404)
    expect((await get(path, { VDRELAY_DEMO_CONSOLE: "on" })).status).toBe(200)
  })
})
