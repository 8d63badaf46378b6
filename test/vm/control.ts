// The host end of the guest control port (virtio-serial "org.vdrelay.ctl", guest side test/vm/guest/ctl.sh): runs
// shell scripts in the guest and returns exit code, stdout and stderr byte-exact. Length-prefixed both ways:
//   request  "<id> <scriptLen> <stdinLen>\n" script stdin
//   reply    "<id> <exitCode> <stdoutLen> <stderrLen>\n" stdout stderr
// Requests run concurrently in the guest; replies are matched by id. A request written before the guest has opened
// its port waits in the chardev socket and is read by the first opener (spec §12), so the first `exec` after boot
// simply waits for the control loop.
import { connect, type Socket } from "node:net"

export interface ExecResult {
  readonly code: number
  readonly stdout: Buffer
  readonly stderr: Buffer
}

export interface ExecOptions {
  /** Bytes given to the script on stdin. */
  readonly stdin?: string | Uint8Array
  /** Default 30 s. The guest job is not killed on timeout; its late reply is dropped. */
  readonly timeoutMs?: number
}

export class GuestCommandError extends Error {
  constructor(
    readonly script: string,
    readonly result: ExecResult,
  ) {
    super(`guest command failed (exit ${result.code}): ${script.slice(0, 200)}\nstderr: ${result.stderr.toString("utf8").slice(0, 2000)}`)
    this.name = "GuestCommandError"
  }
}

export class ControlClient {
  private nextId = 1
  private buffer: Buffer = Buffer.alloc(0)
  private readonly pending = new Map<number, { ok: (r: ExecResult) => void; err: (e: Error) => void }>()
  private closedError: Error | undefined

  private constructor(
    private socket: Socket,
    private readonly path: string,
  ) {
    this.attach(socket)
  }

  private attach(socket: Socket): void {
    socket.on("data", (b: Buffer) => {
      if (this.socket === socket) this.feed(b)
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      if (this.socket !== socket) return
      this.closedError = new Error("control port connection closed")
      for (const p of this.pending.values()) p.err(this.closedError)
      this.pending.clear()
    })
  }

  private static async open(path: string, timeoutMs: number): Promise<Socket> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        return await new Promise<Socket>((resolve, reject) => {
          const s = connect(path)
          s.once("connect", () => resolve(s))
          s.once("error", reject)
        })
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`control socket ${path}: ${(e as Error).message}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  /** Connects to QEMU's socket for the control port, retrying while QEMU has not created it yet. */
  static async connect(path: string, timeoutMs = 10_000): Promise<ControlClient> {
    return new ControlClient(await ControlClient.open(path, timeoutMs), path)
  }

  /**
   * Hangs up and connects again (same object, so holders of `vm.guest` keep working). After a guest reset the socket
   * may still hold the tail of a request the old boot had begun to read: QEMU stops reading the socket while the port
   * is closed and the new boot's control loop would read that tail first and lose step with every later request (a
   * length header read from the middle of a script). A host hang-up makes QEMU drop what its socket holds
   * (docs/qemu-facts.md), so the new loop starts on a clean stream.
   */
  async reconnect(reason: string): Promise<void> {
    // QEMU serves one connection per chardev: the old one must be gone before the new one is accepted.
    this.abandonPending(reason)
    this.socket.destroy()
    this.closedError = new Error(`control port reconnecting: ${reason}`)
    const socket = await ControlClient.open(this.path, 10_000)
    this.socket = socket
    this.closedError = undefined
    this.buffer = Buffer.alloc(0)
    this.attach(socket)
  }

  get closed(): boolean {
    return this.closedError !== undefined
  }

  /** Runs `script` with `sh` in the guest (cwd /); resolves with its exit code and output whatever the code. */
  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError)
    const id = this.nextId++
    const body = Buffer.from(script, "utf8")
    const stdin = opts.stdin === undefined ? Buffer.alloc(0) : typeof opts.stdin === "string" ? Buffer.from(opts.stdin, "utf8") : Buffer.from(opts.stdin)
    const timeoutMs = opts.timeoutMs ?? 30_000
    return new Promise<ExecResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`guest command gave no reply within ${timeoutMs} ms: ${script.slice(0, 200)}`))
      }, timeoutMs)
      this.pending.set(id, {
        ok: (r) => {
          clearTimeout(timer)
          resolve(r)
        },
        err: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      this.socket.write(Buffer.concat([Buffer.from(`${id} ${body.length} ${stdin.length}\n`), body, stdin]))
    })
  }

  /** Like exec, but rejects with GuestCommandError on a non-zero exit; resolves with stdout. */
  async sh(script: string, opts: ExecOptions = {}): Promise<Buffer> {
    const r = await this.exec(script, opts)
    if (r.code !== 0) throw new GuestCommandError(script, r)
    return r.stdout
  }

  /** Fails every request still waiting and drops a half-read reply (the guest was reset and will never finish them). */
  abandonPending(reason: string): void {
    this.buffer = Buffer.alloc(0)
    for (const p of this.pending.values()) p.err(new Error(reason))
    this.pending.clear()
  }

  close(): void {
    this.socket.destroy()
  }

  private feed(b: Buffer): void {
    this.buffer = this.buffer.length === 0 ? b : Buffer.concat([this.buffer, b])
    for (;;) {
      const nl = this.buffer.indexOf(0x0a)
      if (nl < 0) return
      const header = this.buffer.subarray(0, nl).toString("latin1")
      const m = /^(\d+) (\d+) (\d+) (\d+)$/.exec(header)
      if (m === null) {
        // Not a reply header: the stream is out of step (a guest reset cut a reply). Drop everything buffered.
        this.abandonPending(`control port: unexpected bytes from the guest: ${JSON.stringify(header.slice(0, 80))}`)
        return
      }
      const [outLen, errLen] = [Number(m[3]), Number(m[4])]
      const end = nl + 1 + outLen + errLen
      if (this.buffer.length < end) return
      const stdout = Buffer.from(this.buffer.subarray(nl + 1, nl + 1 + outLen))
      const stderr = Buffer.from(this.buffer.subarray(nl + 1 + outLen, end))
      this.buffer = this.buffer.subarray(end)
      const id = Number(m[1])
      const p = this.pending.get(id)
      this.pending.delete(id)
      p?.ok({ code: Number(m[2]), stdout, stderr })
    }
  }
}
