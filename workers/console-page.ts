// The console page served at / and /console until the demo console (workers/console/) provides its own.
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vdrelay</title></head>
<body><h1>vdrelay</h1><p>SPICE guest-agent relay. Consoles connect to <code>/v1/vms/{vm}/console</code> over WebSocket.</p></body></html>
`

export const consolePage = (request: Request, path: string): Response => {
  if (path !== "/" && path !== "/console") return new Response("not found", { status: 404 })
  return new Response(request.method === "HEAD" ? null : PAGE, { headers: { "content-type": "text/html; charset=utf-8" } })
}
