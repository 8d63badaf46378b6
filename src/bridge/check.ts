// `vdrelay bridge --check --config F`: what an operator (or ExecStartPre, or a config-management run) asks before a
// (re)start: is the config valid, and will every VM's token be accepted by the relay? The config is parsed as the
// bridge parses it; each token file is read and its claims checked against its VM: a bridge token, for this VM, not
// expired and already valid. Signatures are not checked (the bridge holds no verification key) and no socket is
// opened (the VM may be off). Every problem is reported, not only the first.
import { readFile } from "node:fs/promises"
import { decodeBase64url } from "../auth/base64url.ts"
import type { BridgeConfig, Endpoint, VmConfig } from "./config.ts"

export interface CheckResult {
  /** One line per VM: what the bridge will connect where, and the token's tenant and expiry. */
  readonly lines: ReadonlyArray<string>
  /** `[key, detail]` per problem, the key as config errors name it (`vms[1].tokenFile`). */
  readonly problems: ReadonlyArray<readonly [key: string, detail: string]>
}

/** Tolerated clock skew on exp/nbf: the relay's default (VDRELAY_CLOCK_SKEW_SECONDS). */
const SKEW_SECONDS = 30

const endpoint = (e: Endpoint): string => (e.kind === "unix" ? e.path : `${e.host}:${e.port}`)
const when = (seconds: number): string => new Date(seconds * 1000).toISOString().replace(/\.000Z$/, "Z")

/** The token's claims, unverified, or why it is not a token. */
const claimsOf = (token: string): Record<string, unknown> | string => {
  const parts = token.split(".")
  if (parts.length !== 3) return "is not a token (a JWT has three dot-separated parts)"
  const payload = decodeBase64url(parts[1]!)
  if (payload === null) return "is not a token (its payload is not base64url)"
  try {
    const claims = JSON.parse(new TextDecoder().decode(payload)) as unknown
    return typeof claims === "object" && claims !== null && !Array.isArray(claims) ? (claims as Record<string, unknown>) : "is not a token (its payload is not a JSON object)"
  } catch {
    return "is not a token (its payload is not JSON)"
  }
}

const checkVm = async (vm: VmConfig, at: string, now: number): Promise<{ line: string; problems: Array<readonly [string, string]> }> => {
  const key = `${at}.tokenFile`
  const problems: Array<readonly [string, string]> = []
  const qmp = vm.qmp === undefined ? "no QMP" : `QMP ${endpoint(vm.qmp.endpoint)} (device ${vm.qmp.device})`
  let token: string
  try {
    token = (await readFile(vm.tokenFile, "utf8")).trim()
  } catch (e) {
    problems.push([key, `cannot read ${vm.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`])
    return { line: `${vm.id}: chardev ${endpoint(vm.chardev)}, ${qmp}, ${vm.url}, token unreadable`, problems }
  }
  const claims = claimsOf(token)
  if (typeof claims === "string") {
    problems.push([key, `${vm.tokenFile} ${claims}`])
    return { line: `${vm.id}: chardev ${endpoint(vm.chardev)}, ${qmp}, ${vm.url}, no token`, problems }
  }
  if (claims.role !== "bridge") problems.push([key, `${vm.tokenFile} is a ${String(claims.role)} token, not a bridge token`])
  if (claims.vm !== vm.id) problems.push([key, `${vm.tokenFile} is for VM "${String(claims.vm)}", not "${vm.id}"`])
  const exp = typeof claims.exp === "number" ? claims.exp : undefined
  const nbf = typeof claims.nbf === "number" ? claims.nbf : undefined
  if (exp === undefined) problems.push([key, `${vm.tokenFile} has no expiry`])
  else if (exp + SKEW_SECONDS <= now) problems.push([key, `${vm.tokenFile} expired at ${when(exp)}`])
  if (nbf !== undefined && nbf - SKEW_SECONDS > now) problems.push([key, `${vm.tokenFile} is not valid before ${when(nbf)}`])
  const hostKey = typeof claims.cnf === "object" && claims.cnf !== null ? ", needs this host's key (cnf)" : ""
  const expiry = exp === undefined ? "" : `, expires ${when(exp)}`
  return { line: `${vm.id}: chardev ${endpoint(vm.chardev)}, ${qmp}, ${vm.url}, token of tenant ${String(claims.tenant)}${expiry}${hostKey}`, problems }
}

export const checkConfig = async (config: BridgeConfig, now = Math.floor(Date.now() / 1000)): Promise<CheckResult> => {
  const results = await Promise.all(config.vms.map((vm) => checkVm(vm, vm.at, now)))
  const n = config.vms.length + config.failed.length
  return {
    lines: [
      `bridge "${config.bridge}": ${n} VM${n === 1 ? "" : "s"}`,
      ...results.map((r) => `  ${r.line}`),
      ...config.failed.map((f) => `  ${f.vm}: bad entry (${f.key})`),
    ],
    problems: [...config.failed.map((f) => [f.key, f.detail] as const), ...results.flatMap((r) => r.problems)],
  }
}
