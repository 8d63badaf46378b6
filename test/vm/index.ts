// The real-VM test bed: the real spice-vdagentd + spice-vdagent inside a real QEMU guest (spec §14). Import from here.
//
//   const vm = await startVm({ dir })            // boots (image built/cached on first use); waits until the agent port is open
//                                                // options: screen "WxHxD" (max MONITORS_CONFIG size), wait, noReboot, incoming, extraArgs
//   vm.agentSocket / vm.qmpSocket                 // chardev socket + a QMP monitor for the bridge (infra/qemu ids: vdagent / vdport)
//   vm.qmp.execute("system_reset")                // the test's own QMP client: execute, events, mark, waitForEvent, frontendOpen
//   vm.guest.exec(script, { stdin }) → { code, stdout, stderr }    vm.guest.sh(script) → stdout (throws on exit ≠ 0)
//   vm.guest.setClipboard(text | bytes, { mime }) / getClipboard({ mime })   // xclip on the guest's Xvfb :0
//   vm.guest.screenSize() → { width, height }     // xrandr --current
//   vm.guest.files() → [{ name, size, sha256 }]   vm.guest.readFile(name)    vm.guest.clearFiles()
//   vm.guest.agentLogs() / daemonLogMark() / syncErrors(mark)
//   vm.guest.stopAgent() / startAgent() / restartAgent()   // the port closes and reopens; start waits for the open
//   vm.guest.capturePort([{ holdMs }, { gapMs, holdMs }]) → Uint8Array[]   // daemon stopped: what each new opener reads
//   vm.waitForAgentPort(open?)   vm.reset()   vm.poweroff()   vm.kill()   vm.restart()   vm.stop()
//   vm.bootMs, vm.startedAt, vm.console (serial log lines), vm.accel ("kvm" | "tcg")
//
// Two VMs with two dirs are two hosts; `incoming: "unix:…"` starts a migration destination; `extraArgs` is passed as is.
// In a test file: `const vmTests = vmTestsEnabled()` then `describe.skipIf(!vmTests)(…)`: with CI set a missing
// dependency fails the test (startVm throws VmSetupError naming the Debian package); outside CI it skips, loudly.
import { vmMissing } from "./qemu.ts"

export { startVm, vmMissing, type Vm, type VmOptions, type VmWait, AGENT_CHARDEV, AGENT_DEVICE, CONTROL_CHARDEV, CONTROL_DEVICE } from "./qemu.ts"
export { Guest, XFER_DIR, AGENT_PORT_PATH, shq, type GuestFile, type PortHold, type ClipboardOptions, type AgentLogs } from "./guest.ts"
export { ControlClient, GuestCommandError, type ExecResult, type ExecOptions } from "./control.ts"
export { Qmp, QmpError, type QmpEvent } from "./qmp.ts"
export { guestImage, VmSetupError, type GuestImage } from "./image.ts"

/** True when VM tests should run: everything is installed, or CI is set (then a missing piece fails the test). */
export const vmTestsEnabled = (): boolean => {
  const missing = vmMissing()
  if (missing.length === 0 || process.env.CI !== undefined) return true
  process.stderr.write(`\n*** SKIPPING real-VM tests (not CI): missing ${missing.join("; ")}. Run \`bash infra/install-deps.sh\`. ***\n\n`)
  return false
}
