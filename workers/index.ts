// Worker entry: placeholder until the edge issue lands (routing, auth, demo console).
import { DurableObject } from "cloudflare:workers"

export class VmSession extends DurableObject<Env> {
  override async fetch(_request: Request): Promise<Response> {
    return new Response("vmsession")
  }
}

export default {
  async fetch(request: Request, _env: Env): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname === "/healthz") return new Response("ok")
    return new Response("not found", { status: 404 })
  },
} satisfies ExportedHandler<Env>
