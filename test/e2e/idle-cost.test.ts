// An idle VM costs the Durable Object nothing: with the real agent behind `vdrelay bridge` and an SDK console attached,
// both links pinging every second, a quiet spell lets workerd hibernate the object and no heartbeat runs or wakes it
// (WebSocket auto-response); both peers still hear their pongs (neither link is dropped for silence), and the session
// works afterwards. Counted at the edge: frames the object ran, object starts, the bridge's last auto-answered ping.
import { afterAll, beforeAll, expect, it } from "vitest"
import WebSocket from "ws"
import { connect, type Session, type WebSocketConstructor } from "../../src/client/index.ts"
import type { RealAgent } from "../harness/real-agent.ts"
import { type Stack, startStack } from "../harness/stack.ts"

const TENANT = "acme"
const VM = "vm-idle"
const PING_MS = 1000
/** Longer than workerd's inactivity eviction of an object whose sockets are all hibernatable (~10 s). */
const IDLE_MS = 30_000

let stack: Stack
let agent: RealAgent
let client: Session
const states: string[] = []

interface Status {
  readonly edge: Record<string, number>
  readonly agent: { readonly bridgePing: string | null }
}
const status = async (): Promise<Status> => {
  const token = await stack.worker.mint({ tenant: TENANT, vm: VM, role: "operator" })
  return (await (await fetch(`${stack.url}/v1/vms/${VM}/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as Status
}
const until = async (pred: () => boolean, what: string, ms = 60_000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

beforeAll(async () => {
  stack = await startStack({ tenant: TENANT, vm: VM, agent: "real", bridge: { name: "idle-host", pingIntervalMs: PING_MS, logLevel: "info" }, tokenTtl: 3600 })
  agent = stack.agent.real!
  client = await connect({
    url: `${stack.worker.wsUrl}/v1/vms/${VM}/console`,
    token: () => stack.worker.mint({ tenant: TENANT, vm: VM, role: "controller" }),
    clientName: "idle-e2e",
    heartbeatMs: PING_MS,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
  })
  client.on("state", (s) => states.push(s))
  await until(() => client.agent.connected && client.agent.caps !== null, "the console sees the agent")
})

afterAll(async () => {
  await client?.close()
  await stack?.stop()
})

it("a bridge and a console idle for 30 s: heartbeats answered, no frame run by the object, no wake-up; the session works after", async () => {
  // Something to do first: the guest's clipboard reaches the console (the idle starts from a used session).
  const grabbed = client.next("clipboard-grab")
  await agent.setClipboard("before the idle")
  await grabbed
  expect(await client.requestClipboardText()).toBe("before the idle")
  await new Promise((r) => setTimeout(r, 1000)) // the last acks settle
  const before = await status()
  const tunnelsBefore = stack.bridge.events().filter((e) => e.event === "tunnel-connected" || e.event === "tunnel-resumed").length

  await new Promise((r) => setTimeout(r, IDLE_MS))

  const after = await status() // wakes the object if it hibernated: its one start
  const d = (k: string): number => (after.edge[k] ?? 0) - (before.edge[k] ?? 0)
  // ~60 pings went each way over the idle: none of them ran in the object.
  expect(d("frames.in.client")).toBe(0)
  expect(d("frames.in.bridge")).toBe(0)
  expect(after.edge["pings.in-object"]).toBeUndefined()
  // The object was evicted during the idle (workerd hibernates it) and started again only for the status read.
  expect(d("object.starts")).toBe(1)
  // The edge answered the bridge's pings while the object slept; the console heard its pongs (a silent link drops
  // after two intervals, and reconnects: a state change, a new link).
  expect(after.agent.bridgePing).not.toBeNull()
  expect(Date.parse(after.agent.bridgePing!)).toBeGreaterThan(Date.now() - 10 * PING_MS)
  expect(states).toEqual([])
  expect(d("links.opened.client")).toBe(0)
  expect(d("links.opened.bridge")).toBe(0)
  expect(stack.bridge.events().filter((e) => e.event === "tunnel-connected" || e.event === "tunnel-resumed").length).toBe(tunnelsBefore)

  // And the hibernated session still carries the clipboard both ways.
  const grabbed2 = client.next("clipboard-grab")
  await agent.setClipboard("after the idle")
  await grabbed2
  expect(await client.requestClipboardText()).toBe("after the idle")
  const from = agent.logs.session.mark()
  await client.setClipboardText("console after the idle")
  await agent.logs.session.waitFor(/received clipboard grab/, { from, timeoutMs: 30_000 })
  expect((await agent.getClipboard({ timeoutMs: 30_000 })).toString("utf8")).toBe("console after the idle")
}, 240_000)
