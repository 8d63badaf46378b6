// What tests do inside the guest, over the control port: the X clipboard through xclip, the X screen size through
// xrandr, the agent's file-transfer folder, the agent's logs, stopping/starting the real agent, and holding the agent
// port open by hand (with the daemon stopped) to see exactly which bytes a new opener reads.
import { SYNC_ERROR_PATTERNS } from "../harness/real-agent.ts"
import type { ControlClient, ExecOptions, ExecResult } from "./control.ts"

/** The session agent's file-transfer folder (spice-vdagent -f). */
export const XFER_DIR = "/tmp/xfer"
export const AGENT_PORT_PATH = "/dev/virtio-ports/com.redhat.spice.0"
const LOGS = { daemon: "/var/log/vdagentd.log", session: "/var/log/vdagent.log", xvfb: "/var/log/Xvfb.log" } as const
const X = "export DISPLAY=:0;"

/** Single-quoted for sh. */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

export interface GuestFile {
  readonly name: string
  readonly size: number
  readonly sha256: string
}

export interface AgentLogs {
  readonly daemon: string
  readonly session: string
}

/** One open of the agent port in `capturePort`: wait `gapMs` after the previous close, then hold it open `holdMs`. */
export interface PortHold {
  readonly gapMs?: number
  readonly holdMs: number
}

export interface ClipboardOptions {
  /** X selection; default "clipboard". */
  readonly selection?: "clipboard" | "primary"
  /** X target, e.g. "UTF8_STRING" (default for text) or "image/png". */
  readonly mime?: string
}

export class Guest {
  constructor(readonly control: ControlClient) {}

  exec(script: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.control.exec(script, opts)
  }

  sh(script: string, opts?: ExecOptions): Promise<Buffer> {
    return this.control.sh(script, opts)
  }

  /** Seconds since the guest kernel started (/proc/uptime). */
  async uptime(): Promise<number> {
    return Number.parseFloat((await this.sh("cut -d' ' -f1 /proc/uptime")).toString())
  }

  /**
   * Puts `data` on an X selection with xclip; resolves once xclip owns it (the agent then sends CLIPBOARD_GRAB).
   * xclip stays in the background serving requests until another owner takes the selection (it has read the data
   * by then, so the file is removed: the guest's /tmp is RAM).
   */
  async setClipboard(data: string | Uint8Array, opts: ClipboardOptions = {}): Promise<void> {
    const mime = opts.mime ?? "UTF8_STRING"
    const sel = opts.selection ?? "clipboard"
    await this.sh(
      `${X} f=$(mktemp /tmp/clip.XXXXXX); cat > "$f"; l=$f.log
       xclip -quiet -i -selection ${shq(sel)} -t ${shq(mime)} "$f" > "$l" 2>&1 &
       n=0; until grep -q 'Waiting for selection requests' "$l"; do
         n=$((n + 1)); [ $n -ge 500 ] && { cat "$l" >&2; exit 1; }
         kill -0 $! 2>/dev/null || { cat "$l" >&2; exit 1; }
         usleep 20000; done
       rm -f "$f"`,
      { stdin: data },
    )
  }

  /** Reads an X selection with xclip (if the host owns it, the agent asks the host and waits for its CLIPBOARD). */
  async getClipboard(opts: ClipboardOptions & { timeoutMs?: number } = {}): Promise<Buffer> {
    const secs = Math.ceil((opts.timeoutMs ?? 15_000) / 1000)
    return this.sh(`${X} timeout ${secs} xclip -o -selection ${shq(opts.selection ?? "clipboard")} -t ${shq(opts.mime ?? "UTF8_STRING")}`, {
      timeoutMs: secs * 1000 + 5000,
    })
  }

  /** The X screen's current size (`xrandr --current`). */
  async screenSize(): Promise<{ width: number; height: number }> {
    const out = (await this.sh(`${X} xrandr --current`)).toString()
    const m = /current (\d+) x (\d+)/.exec(out)
    if (m === null) throw new Error(`xrandr gave no current size: ${out}`)
    return { width: Number(m[1]), height: Number(m[2]) }
  }

  /** Files in the agent's transfer folder with size and sha256, by name. */
  async files(): Promise<GuestFile[]> {
    const out = (await this.sh(`cd ${XFER_DIR} && for f in *; do [ -f "$f" ] || continue; printf '%s %s ' "$(stat -c %s "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)"; printf '%s\\0' "$f"; done`)).toString("utf8")
    return out
      .split("\0")
      .filter((e) => e !== "")
      .map((e) => {
        const [size, sha256, ...name] = e.split(" ")
        return { name: name.join(" "), size: Number(size), sha256: sha256! }
      })
      .sort((a, b) => a.name.localeCompare(b.name))
  }

  readFile(name: string): Promise<Buffer> {
    return this.sh(`cat ${shq(`${XFER_DIR}/${name}`)}`, { timeoutMs: 60_000 })
  }

  /** Empties the transfer folder. */
  async clearFiles(): Promise<void> {
    await this.sh(`rm -rf ${XFER_DIR}/* ${XFER_DIR}/.[!.]*; true`)
  }

  async agentLogs(): Promise<AgentLogs> {
    const [daemon, session] = await Promise.all([this.sh(`cat ${LOGS.daemon}`), this.sh(`cat ${LOGS.session}`)])
    return { daemon: daemon.toString("utf8"), session: session.toString("utf8") }
  }

  /** Lines in the daemon log so far: pass to `syncErrors` to look only at what comes after. */
  async daemonLogMark(): Promise<number> {
    return (await this.agentLogs()).daemon.split("\n").length - 1
  }

  /** Daemon log lines (after line `from`) that mean lost sync or a refused chunk/message (SYNC_ERROR_PATTERNS). */
  async syncErrors(from = 0): Promise<string[]> {
    const lines = (await this.agentLogs()).daemon.split("\n").slice(from)
    return lines.filter((l) => SYNC_ERROR_PATTERNS.some((p) => p.test(l)))
  }

  /**
   * Stops the session agent and the daemon; the daemon's port closes. Xvfb keeps running. They stay stopped until
   * startAgent (otherwise the guest's supervisor restarts them whenever they are gone, as systemd would).
   */
  async stopAgent(): Promise<void> {
    await this.sh("/usr/libexec/vdrelay/agent stop")
  }

  /** Starts the daemon and session agent; resolves once the daemon has opened the port (~2 s of GTK start-up). */
  async startAgent(): Promise<void> {
    await this.sh("/usr/libexec/vdrelay/agent start", { timeoutMs: 40_000 })
  }

  /** Kills and restarts spice-vdagentd and spice-vdagent: the port closes and reopens; the daemon announces again. */
  async restartAgent(): Promise<void> {
    await this.sh("/usr/libexec/vdrelay/agent restart", { timeoutMs: 40_000 })
  }

  /** "xvfb up", "vdagentd down", … */
  async agentStatus(): Promise<Record<string, "up" | "down">> {
    const out = (await this.sh("/usr/libexec/vdrelay/agent status")).toString()
    return Object.fromEntries(out.trim().split("\n").map((l) => l.split(" ") as [string, "up" | "down"]))
  }

  /**
   * With the daemon stopped (call stopAgent first: the port has one opener at a time), opens the agent port once per
   * hold, reads everything that arrives while it is open, closes it, waits the next hold's gap, and so on. Returns the
   * bytes each open read, in order: whatever the host had written while the port was closed shows up in the first
   * bytes of the next open (spec §12), so this is how a test sees stale bytes.
   */
  async capturePort(holds: ReadonlyArray<PortHold>): Promise<Uint8Array[]> {
    const steps = holds
      .map((h, i) => `${(h.gapMs ?? 0) > 0 ? `usleep ${Math.round((h.gapMs ?? 0) * 1000)}; ` : ""}cat ${AGENT_PORT_PATH} > /tmp/cap/${i} & p=$!; usleep ${Math.round(h.holdMs * 1000)}; kill $p 2>/dev/null; wait $p`)
      .join("\n")
    const total = holds.reduce((s, h) => s + (h.gapMs ?? 0) + h.holdMs, 0)
    const script = `rm -rf /tmp/cap; mkdir -p /tmp/cap\n${steps}\nfor i in $(seq 0 ${holds.length - 1}); do echo "cap $(stat -c %s /tmp/cap/$i)" >&2; cat /tmp/cap/$i; done`
    const r = await this.control.exec(script, { timeoutMs: total + 30_000 })
    if (r.code !== 0) throw new Error(`capturePort failed (exit ${r.code}): ${r.stderr.toString()}`)
    const sizes = [...r.stderr.toString().matchAll(/^cap (\d+)$/gm)].map((m) => Number(m[1]))
    if (sizes.length !== holds.length) throw new Error(`capturePort: expected ${holds.length} captures: ${r.stderr.toString()}`)
    const out: Uint8Array[] = []
    let at = 0
    for (const n of sizes) {
      out.push(new Uint8Array(r.stdout.subarray(at, at + n)))
      at += n
    }
    return out
  }

  /** Powers the guest off from inside (poweroff -f): QEMU emits SHUTDOWN and exits. The reply may never come. */
  poweroff(): void {
    void this.control.exec("sync; (usleep 100000; poweroff -f) > /dev/null 2>&1 &").catch(() => {})
  }
}
