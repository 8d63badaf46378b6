// Serves the demo console (GET/HEAD / and /console, and its assets under /console/) from the generated module, with
// a Content-Security-Policy that lets the page talk to this relay only. The token stays in the URL fragment, which
// browsers never send, so nothing here ever sees it.
import { type ConsoleAsset, consoleAssets } from "./generated/assets.ts"

const PAGE = "/console"

const csp = (url: URL): string =>
  [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    // Same-origin WebSockets: 'self' covers ws(s) in CSP3 browsers; the explicit origin covers the rest.
    `connect-src 'self' ${url.protocol === "https:" ? "wss:" : "ws:"}//${url.host}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ")

/** The asset for a console path ("/" is the page too), or undefined for paths the console does not serve. */
export const consoleAsset = (path: string): ConsoleAsset | undefined => consoleAssets[path === "/" ? PAGE : path]

/** Answers a console route; 404 for an unknown path under /console/. */
export const serveConsole = (request: Request, path: string = new URL(request.url).pathname): Response => {
  const asset = consoleAsset(path)
  if (asset === undefined) return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } })
  const isPage = asset.type.startsWith("text/html")
  const headers: Record<string, string> = {
    "content-type": asset.type,
    // The page is small and changes with every deploy; scripts are re-validated so page and SDK never disagree.
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  }
  if (isPage) headers["content-security-policy"] = csp(new URL(request.url))
  return new Response(request.method === "HEAD" ? null : asset.body, { headers })
}
