// A private libvirtd for a test: Debian's own daemon (libvirt-daemon + libvirt-daemon-driver-qemu), run as root in its
// own mount namespace so that /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt
// are the test's directories, with its socket in the test's directory. A privileged qemu driver keeps those paths
// fixed at build time, so without the namespace two daemons (or a system one) would share state. QEMU runs as root
// with no security driver, cgroups or per-domain namespaces (this machine has neither systemd nor AppArmor);
// libvirt marks such a domain "tainted: high-privileges", which is the test set-up's, not what an operator runs.
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type LogLines, type Managed, spawnGroup } from "../harness/processes.ts"
import { findBinary } from "../harness/real-agent.ts"

export interface LibvirtDaemon {
  /** The URI a client (virsh, the bridge) connects with: `qemu+unix:///system?socket=<dir>/sock/libvirt-sock`. */
  readonly uri: string
  readonly dir: string
  readonly log: LogLines
  readonly process: Managed
  /** `virsh -c <uri> …`: stdout, or a rejection with virsh's error. */
  virsh(args: ReadonlyArray<string>, timeoutMs?: number): Promise<string>
  /** Destroys every running domain, stops the daemon, kills any QEMU it left, removes the directory. */
  stop(): Promise<void>
}

/** What this machine lacks to run a private libvirtd (empty: all there). */
export const libvirtMissing = (): string[] => {
  const missing: string[] = []
  if (findBinary("libvirtd") === undefined && !existsSync("/usr/sbin/libvirtd")) missing.push("libvirtd (Debian packages 'libvirt-daemon' and 'libvirt-daemon-driver-qemu')")
  else if (!existsSync("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so")) missing.push("the libvirt qemu driver (Debian package 'libvirt-daemon-driver-qemu')")
  if (findBinary("virsh") === undefined) missing.push("virsh (Debian package 'libvirt-clients')")
  if (findBinary("unshare") === undefined) missing.push("unshare (Debian package 'util-linux')")
  if (process.getuid?.() !== 0) missing.push("root (a privileged libvirtd in its own mount namespace)")
  return missing
}

const PRIVATE = { etc: "/etc/libvirt", run: "/run/libvirt", lib: "/var/lib/libvirt", cache: "/var/cache/libvirt", log: "/var/log/libvirt" } as const

const LIBVIRTD_CONF = (dir: string): string => `unix_sock_dir = "${dir}/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:${dir}/libvirtd.log"
`

const QEMU_CONF = `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = []
cgroup_controllers = []
stdio_handler = "file"
`

const run = (file: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<string> =>
  new Promise((ok, err) =>
    execFile(file, [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (e, stdout, stderr) => (e === null ? ok(stdout) : err(new Error(`virsh ${args.slice(2).join(" ")}: ${stderr.trim() || e.message}`)))),
  )

export const startLibvirtd = async (): Promise<LibvirtDaemon> => {
  const missing = libvirtMissing()
  if (missing.length > 0) throw new Error(`a private libvirtd needs: ${missing.join("; ")} — run \`bash infra/install-deps.sh\``)
  const dir = mkdtempSync(join(tmpdir(), "vdr-libvirt-"))
  for (const sub of [...Object.keys(PRIVATE), "sock"]) mkdirSync(join(dir, sub), { recursive: true })
  for (const target of Object.values(PRIVATE)) mkdirSync(target, { recursive: true })
  writeFileSync(join(dir, "etc", "libvirtd.conf"), LIBVIRTD_CONF(dir))
  writeFileSync(join(dir, "etc", "qemu.conf"), QEMU_CONF)
  // The privileged qemu driver resolves its compiled-in default user (libvirt-qemu) before reading qemu.conf; that
  // user comes with libvirt-daemon-system, which this machine does not need: add it inside the namespace only.
  const passwd = readFileSync("/etc/passwd", "utf8")
  const group = readFileSync("/etc/group", "utf8")
  writeFileSync(join(dir, "passwd"), /^libvirt-qemu:/m.test(passwd) ? passwd : `${passwd.trimEnd()}\nlibvirt-qemu:x:64055:64055:libvirt qemu:/var/lib/libvirt:/usr/sbin/nologin\n`)
  writeFileSync(join(dir, "group"), /^libvirt-qemu:/m.test(group) ? group : `${group.trimEnd()}\nlibvirt-qemu:x:64055:\n`)
  const binds = [
    `mount --bind ${dir}/passwd /etc/passwd`,
    `mount --bind ${dir}/group /etc/group`,
    ...Object.entries(PRIVATE).map(([sub, target]) => `mount --bind ${dir}/${sub} ${target}`),
  ]
  const script = `set -e; ${binds.join("; ")}; exec libvirtd -f ${dir}/etc/libvirtd.conf -p ${dir}/libvirtd.pid`
  const proc = spawnGroup("libvirtd", "unshare", ["-m", "--propagation", "private", "sh", "-c", script], { env: { ...process.env, PATH: `/usr/sbin:/sbin:${process.env.PATH ?? "/usr/bin:/bin"}` } })
  const uri = `qemu+unix:///system?socket=${dir}/sock/libvirt-sock`
  const virshBin = findBinary("virsh")!
  const virsh = (args: ReadonlyArray<string>, timeoutMs = 60_000): Promise<string> => run(virshBin, ["-c", uri, ...args], timeoutMs)

  const stop = async (): Promise<void> => {
    if (proc.running()) {
      const names = (await virsh(["list", "--name"], 30_000).catch(() => "")).split("\n").map((l) => l.trim()).filter((l) => l !== "")
      for (const name of names) await virsh(["destroy", name], 60_000).catch(() => {})
    }
    await proc.stop(5_000)
    // QEMU processes are libvirtd's daemonized children, outside our process group: end any it left behind.
    const pids = join(dir, "run", "qemu")
    if (existsSync(pids)) {
      for (const f of readdirSync(pids).filter((n) => n.endsWith(".pid"))) {
        const pid = Number(readFileSync(join(pids, f), "utf8").trim())
        if (Number.isSafeInteger(pid) && pid > 1) {
          try {
            process.kill(pid, "SIGKILL")
          } catch {
            // already gone
          }
        }
      }
    }
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    const deadline = Date.now() + 60_000
    for (;;) {
      if (!proc.running()) throw new Error(`libvirtd exited at start:\n${proc.log.text}\n${readFileSync(join(dir, "libvirtd.log"), "utf8").slice(-3000)}`)
      const up = await virsh(["version"], 10_000).then(
        () => true,
        () => false,
      )
      if (up) break
      if (Date.now() > deadline) throw new Error(`libvirtd did not answer on ${uri} within 60 s:\n${proc.log.text}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  } catch (e) {
    await stop()
    throw e
  }
  return { uri, dir, log: proc.log, process: proc, virsh, stop }
}
