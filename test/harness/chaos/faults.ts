// The fault catalogue: each one is something that really happens to a cloud console relay, injected into the real
// processes at a chosen moment (usually while a large message is in flight, in one direction or the other).
import type { Rig } from "./rig.ts"

/** "file→guest": a file transfer of the round's size to the guest (judged byte for byte, or failed on both ends). */
export type Direction = "guest→console" | "console→guest" | "file→guest"

export interface Fault {
  readonly name: string
  readonly what: string
  /** The direction of the large message it should interrupt (undefined: no transfer in flight). */
  readonly during: Direction | undefined
  inject(rig: Rig): Promise<void>
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export const FAULTS: ReadonlyArray<Fault> = [
  { name: "agent-drop-mid-send", what: "the chardev connection drops while the agent sends a large message", during: "guest→console", inject: async (r) => r.agent.dropHost() },
  { name: "agent-reattach-mid-write", what: "the guest closes and reopens its port while a large message is written to it", during: "console→guest", inject: async (r) => r.agent.closeGuest() },
  { name: "controller-drop-mid-send", what: "the controller's network drops while it sends a large message", during: "console→guest", inject: async (r) => (r.b.session.role === "controller" ? r.b : r.a).proxy.cut() },
  { name: "client-drop-mid-receive", what: "the controller's network drops while it receives a large message", during: "guest→console", inject: async (r) => (r.b.session.role === "controller" ? r.b : r.a).proxy.cut() },
  { name: "viewer-drop", what: "the viewer's network drops while a large message is relayed", during: "guest→console", inject: async (r) => (r.b.session.role === "controller" ? r.a : r.b).proxy.cut() },
  { name: "tunnel-drop-up", what: "the bridge tunnel drops while a large agent→console message crosses it", during: "guest→console", inject: async (r) => r.bridgeProxy.cut() },
  { name: "tunnel-drop-down", what: "the bridge tunnel drops while a large console→agent message crosses it", during: "console→guest", inject: async (r) => r.bridgeProxy.cut() },
  { name: "worker-restart", what: "workerd is killed and restarted (Durable Object storage kept)", during: "guest→console", inject: (r) => r.worker.restart() },
  { name: "worker-restart-down", what: "workerd restarts while a console→agent message is relayed", during: "console→guest", inject: (r) => r.worker.restart() },
  { name: "daemon-restart", what: "spice-vdagentd and the session agent are killed and restarted", during: "guest→console", inject: (r) => r.agent.restartDaemon() },
  { name: "daemon-restart-down", what: "the agent daemon restarts while a console→agent message is written", during: "console→guest", inject: (r) => r.agent.restartDaemon() },
  { name: "chardev-close", what: "the chardev socket closes (VM reboot) between messages", during: undefined, inject: async (r) => r.agent.dropHost() },
  { name: "qmp-port-flap", what: "QMP reports the guest port closed, then open (no data path change)", during: undefined, inject: async (r) => {
    r.qmp.setGuestOpen(false)
    await sleep(1200)
    r.qmp.setGuestOpen(true)
  } },
  { name: "qmp-monitor-drop", what: "QEMU's monitor drops the bridge's QMP connection", during: "guest→console", inject: async (r) => r.qmp.dropClients() },
  { name: "takeover-mid-send", what: "another console takes control while the controller sends a large message", during: "console→guest", inject: async (r) => {
    const other = r.b.session.role === "controller" ? r.a : r.b
    await other.session.takeControl()
  } },
  { name: "bridge-restart", what: "the bridge process is killed and restarted mid transfer", during: "guest→console", inject: (r) => r.restartBridge() },
  { name: "worker-restart-file", what: "workerd is killed and restarted while a file streams to the guest", during: "file→guest", inject: (r) => r.worker.restart() },
  { name: "tunnel-drop-file", what: "the bridge tunnel drops while a file streams to the guest", during: "file→guest", inject: async (r) => r.bridgeProxy.cut() },
]

/** DO hibernation cannot be forced from outside workerd: it is covered by test/workers (evictDurableObject). */
export const NOT_INJECTED = ["durable-object-hibernation"] as const
