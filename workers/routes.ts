// The Worker's route table: path and method to a route, or the HTTP refusal (404 unknown path, 405 wrong method).
import { NAME_PATTERN } from "../src/auth/token.ts"
import type { TokenRole } from "../src/link/types.ts"

export type Route =
  | { readonly kind: "healthz" }
  | { readonly kind: "console-page"; readonly path: string }
  | { readonly kind: "console"; readonly vm: string }
  | { readonly kind: "agent"; readonly vm: string }
  | { readonly kind: "status"; readonly vm: string }
  | { readonly kind: "policy"; readonly vm: string }

export type VmRoute = Extract<Route, { vm: string }>

/** Token roles each VM route accepts: a client token can never open the bridge link and vice versa. */
export const rolesFor: { readonly [K in VmRoute["kind"]]: ReadonlyArray<TokenRole> } = {
  console: ["controller", "viewer"],
  agent: ["bridge"],
  status: ["operator"],
  policy: ["operator"],
}

export type Matched = { readonly _tag: "Route"; readonly route: Route } | { readonly _tag: "NotFound" } | { readonly _tag: "BadMethod"; readonly allow: string }

const VM_PATH = /^\/v1\/vms\/([^/]+)\/(console|agent|status|policy)$/

const method = (actual: string, allowed: string, route: Route): Matched =>
  actual === allowed || (allowed === "GET" && actual === "HEAD" && route.kind === "console-page")
    ? { _tag: "Route", route }
    : { _tag: "BadMethod", allow: allowed === "GET" && route.kind === "console-page" ? "GET, HEAD" : allowed }

export const matchRoute = (httpMethod: string, pathname: string): Matched => {
  if (pathname === "/healthz") return method(httpMethod, "GET", { kind: "healthz" })
  if (pathname === "/" || pathname === "/console" || pathname.startsWith("/console/")) {
    return method(httpMethod, "GET", { kind: "console-page", path: pathname })
  }
  const m = VM_PATH.exec(pathname)
  if (m === null) return { _tag: "NotFound" }
  let vm: string
  try {
    vm = decodeURIComponent(m[1]!)
  } catch {
    return { _tag: "NotFound" }
  }
  if (!NAME_PATTERN.test(vm)) return { _tag: "NotFound" }
  const kind = m[2] as VmRoute["kind"]
  return method(httpMethod, kind === "policy" ? "PUT" : "GET", { kind, vm })
}
