// The demo console as the Worker serves it: the generated module matches its sources (page + SDK bundle), the SDK
// bundles for browsers without Node built-ins, and the routes answer with the right types and a strict CSP.
import { createHash } from "node:crypto"
import { readFile } from "node:fs/promises"
import { describe, expect, it } from "vitest"
import { GENERATED, bundleClient, renderAssets } from "../../harness/console-assets.ts"
import { serveConsole } from "../../../workers/console/index.ts"

describe("console assets", () => {
  it("workers/console/generated/assets.ts is up to date with the page and the SDK", async () => {
    // Compared by digest: a stale bundle is one fix away (`npm run build:console`), not a 100 KB diff to read.
    const digest = (s: string) => createHash("sha256").update(s).digest("hex")
    const fresh = digest(await renderAssets()) === digest(await readFile(GENERATED, "utf8"))
    expect(fresh, "stale: run `npm run build:console` and commit workers/console/generated/assets.ts").toBe(true)
  })

  it("the SDK bundle is a browser module that exports connect and uses no Node built-in", async () => {
    const js = await bundleClient()
    expect(js).toMatch(/export\{[^}]*\bconnect\b/)
    expect(js).not.toMatch(/\bnode:|require\(/)
  })

  it("serves the page at / and /console with a CSP limited to this origin, and HEAD without a body", async () => {
    for (const path of ["/", "/console"]) {
      const r = serveConsole(new Request(`http://127.0.0.1:8787${path}`))
      expect(r.status).toBe(200)
      expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8")
      expect(r.headers.get("content-security-policy")).toContain("connect-src 'self' ws://127.0.0.1:8787")
      expect(await r.text()).toContain('<script type="module" src="/console/console.js">')
    }
    const head = serveConsole(new Request("https://relay.example/console", { method: "HEAD" }))
    expect(head.headers.get("content-security-policy")).toContain("wss://relay.example")
    expect(await head.text()).toBe("")
  })

  it("serves the assets with their types and 404s anything else under /console/", async () => {
    const get = (p: string) => serveConsole(new Request(`http://h${p}`))
    expect(get("/console/console.js").headers.get("content-type")).toBe("text/javascript; charset=utf-8")
    expect(get("/console/vdrelay-client.js").headers.get("content-type")).toBe("text/javascript; charset=utf-8")
    expect(get("/console/console.css").headers.get("content-type")).toBe("text/css; charset=utf-8")
    expect(get("/console/../wrangler.toml").status).toBe(404)
    expect(get("/console/nope.js").status).toBe(404)
  })
})
