// The Worker: routes, authenticates and authorises every request before any Durable Object is touched, then hands the
// request to the VmSession named by the verified claims (tenant/vm), never by anything else in the request.
import { forwardRequest } from "./forward.ts"
import { authorize } from "./edge-auth.ts"
import { serveConsole } from "./console/index.ts"
import { matchRoute, type VmRoute } from "./routes.ts"
import { mergePolicy } from "./status.ts"
import { defaultPolicy } from "../src/link/types.ts"
import { log } from "./session-host.ts"

export { VmSession } from "./vm-session.ts"

/** Largest PUT /policy body accepted. */
const MAX_POLICY_BODY = 4096

const refusal = (status: number, reason: string, headers?: HeadersInit): Response =>
  new Response(`${reason}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } })

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url)
    const m = matchRoute(request.method, url.pathname)
    if (m._tag === "NotFound") return refusal(404, "not found")
    if (m._tag === "BadMethod") return refusal(405, "method not allowed", { Allow: m.allow })
    const route = m.route
    if (route.kind === "healthz") return new Response("ok")
    if (route.kind === "console-page") return serveConsole(request, route.path)
    return vmRoute(request, route, env)
  },
} satisfies ExportedHandler<Env>

const vmRoute = async (request: Request, route: VmRoute, env: Env): Promise<Response> => {
  const upgrade = route.kind === "console" || route.kind === "agent"
  if (upgrade && request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return refusal(426, "websocket upgrade required", { Upgrade: "websocket" })
  }
  const auth = await authorize(request, route, env)
  if (auth._tag === "Refusal") {
    log("info", "refused", { route: route.kind, status: auth.status, reason: auth.reason })
    return refusal(auth.status, auth.reason, auth.status === 401 ? { "WWW-Authenticate": 'Bearer realm="vdrelay"' } : undefined)
  }
  let body: string | undefined
  if (route.kind === "policy") {
    const text = await readLimited(request, MAX_POLICY_BODY)
    if (text === undefined) return refusal(413, "policy too large")
    body = text
    if (!validPolicyPatch(body)) return refusal(400, "bad policy")
  }
  const { tenant, vm } = auth.claims
  const stub = env.VM_SESSION.get(env.VM_SESSION.idFromName(`${tenant}/${vm}`))
  return stub.fetch(forwardRequest(route, auth.claims, auth.protocol, body))
}

/**
 * The body as text if it has at most `max` bytes, else undefined: a longer body is refused after `max` bytes, not
 * buffered whole first (an operator token must not be a way to make the Worker hold megabytes).
 */
const readLimited = async (request: Request, max: number): Promise<string | undefined> => {
  if (Number(request.headers.get("Content-Length") ?? "0") > max) return undefined
  const reader = request.body?.getReader()
  if (reader === undefined) return ""
  const parts: Uint8Array[] = []
  let n = 0
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    n += r.value.byteLength
    if (n > max) {
      await reader.cancel()
      return undefined
    }
    parts.push(r.value)
  }
  const all = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    all.set(p, at)
    at += p.byteLength
  }
  return new TextDecoder().decode(all)
}

const validPolicyPatch = (body: string): boolean => {
  try {
    return mergePolicy(defaultPolicy, JSON.parse(body)) !== undefined
  } catch {
    return false
  }
}
