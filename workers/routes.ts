// The Worker's route table: path and method to a route, or the HTTP refusal (404 unknown path, 405 wrong method).
import { NAME_PATTERN, type TokenRole } from "../src/auth/token.ts"

export type Route =
  | { readonly kind: "healthz" }
  | { readonly kind: "console-page"; readonly path: string }
  | { readonly kind: "console"; readonly vm: string }
  | { readonly kind: "agent"; readonly vm: string }
  | { readonly kind: "status"; readonly vm: string }
  | { readonly kind: "policy"; readonly vm: string }
  /** Revocation of one token id, or of every token issued before a time, on one VM (operator token of that VM). */
  | { readonly kind: "revocations"; readonly vm: string }
  /** The same across the tenant (admin token): reaches every VM of the tenant that has links. */
  | { readonly kind: "tenant-revocations" }

export type VmRoute = Extract<Route, { vm: string }>
/** Routes that need a token. */
export type AuthRoute = VmRoute | Extract<Route, { kind: "tenant-revocations" }>

/** Token roles each route accepts: a client token can never open the bridge link and vice versa. */
export const rolesFor: { readonly [K in AuthRoute["kind"]]: ReadonlyArray<TokenRole> } = {
  console: ["controller", "viewer"],
  agent: ["bridge"],
  status: ["operator"],
  policy: ["operator"],
  revocations: ["operator"],
  "tenant-revocations": ["admin"],
}

export type Matched = { readonly _tag: "Route"; readonly route: Route } | { readonly _tag: "NotFound" } | { readonly _tag: "BadMethod"; readonly allow: string }

const VM_PATH = /^\/v1\/vms\/([^/]+)\/(console|agent|status|policy|revocations)$/

/** Method of each VM route: reads are GET (upgrades included), the policy is replaced, revocations are added. */
const VM_METHODS: { readonly [K in VmRoute["kind"]]: string } = { console: "GET", agent: "GET", status: "GET", policy: "PUT", revocations: "POST" }

const method = (actual: string, allowed: string, route: Route): Matched =>
  actual === allowed || (allowed === "GET" && actual === "HEAD" && route.kind === "console-page")
    ? { _tag: "Route", route }
    : { _tag: "BadMethod", allow: allowed === "GET" && route.kind === "console-page" ? "GET, HEAD" : allowed }

export const matchRoute = (httpMethod: string, pathname: string): Matched => {
  if (pathname === "/healthz") return method(httpMethod, "GET", { kind: "healthz" })
  if (pathname === "/v1/revocations") return method(httpMethod, "POST", { kind: "tenant-revocations" })
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
  return method(httpMethod, VM_METHODS[kind], { kind, vm })
}
