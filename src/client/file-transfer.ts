// File transfer to the guest (spec §7 item 8): FILE_XFER_START with the key file, wait for CAN_SEND_DATA, DATA blocks
// of ≤ 64 KiB kept flowing within a byte window (so a high-latency link is not throttled the way SPICE's 10 × 2 KiB
// token window throttles it), then SUCCESS. Cancel at any point; every failure ends the transfer with a ClientError.
// A transfer ends byte-exact in the guest or failed on both ends: a failure the agent did not report itself is told to
// it (FILE_XFER_STATUS behind the DATA already with the relay, so it removes the partial file), and the failure is
// reported only once that status is answered and no DATA of the transfer is still on its way.
import { FILE_XFER_DATA_BLOCK, FileXferResult } from "../protocol/constants.ts"
import type { AgentMessage, FileXferStatus } from "../protocol/messages.ts"
import { safeBaseName } from "./agent-codec.ts"
import { ClientError } from "./errors.ts"
import type { FileProgress, FileStatus, FileStatusEvent } from "./types.ts"

/** Anything a console can send: a File (browser), a Blob with a name, or bytes with a name. */
export type FileInput =
  | (Blob & { readonly name: string })
  | { readonly name: string; readonly data: Blob | Uint8Array | ArrayBuffer }

interface Source {
  readonly name: string
  readonly size: number
  readonly read: (start: number, end: number) => Promise<Uint8Array>
}

const toSource = (f: FileInput): Source => {
  const data = "data" in f ? f.data : f
  const name = safeBaseName(f.name)
  if (data instanceof Uint8Array) return { name, size: data.length, read: async (s, e) => data.subarray(s, e) }
  if (data instanceof ArrayBuffer) return { name, size: data.byteLength, read: async (s, e) => new Uint8Array(data, s, e - s) }
  return { name, size: data.size, read: async (s, e) => new Uint8Array(await data.slice(s, e).arrayBuffer()) }
}

/** Task ids come from one counter per process starting at 1, as in spice-gtk. */
let nextTaskId = 1

export interface FileTransferDeps {
  readonly send: (msg: Extract<AgentMessage, { _tag: `FileXfer${string}` }>, group?: string) => Promise<void>
  readonly pendingBytes: (group: string) => number
  readonly cancelQueued: (group: string, err: ClientError) => void
  readonly windowBytes: number
  readonly progress: (p: FileProgress) => void
  readonly status: (s: FileStatusEvent) => void
}

/** One transfer: watch `sent`/`status` or the session's file events, await `done`, call `cancel()`. */
export class FileTransfer {
  readonly id = nextTaskId++
  readonly name: string
  readonly size: number
  sent = 0
  status: FileStatus = "waiting"
  /** Why the transfer failed or was cancelled. */
  error: ClientError | undefined
  readonly done: Promise<void>
  private offset = 0
  private reading = false
  private queuedAll = false
  /** DATA handed to the session and not answered yet (ack, notice or withdrawal). */
  private inFlight = 0
  /** Failed and waiting for the agent to be told (`cancelling`) and for DATA in flight to be answered. */
  private closing: { readonly status: FileStatus; readonly err: ClientError; cancelling: boolean } | undefined
  private settle!: { resolve: () => void; reject: (e: ClientError) => void }
  private readonly group: string

  constructor(
    private readonly source: Source,
    private readonly deps: FileTransferDeps,
    private readonly owner: FileTransfers,
  ) {
    this.name = source.name
    this.size = source.size
    this.group = `file:${this.id}`
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }))
    this.done.catch(() => {}) // the caller may only listen to events; an unobserved failure is not an unhandled one
  }

  get active(): boolean {
    return (this.status === "waiting" || this.status === "sending") && this.closing === undefined
  }

  start(): void {
    this.emitStatus()
    // A START the relay did not write (or wrote to an agent connection that ended) left nothing in the guest.
    this.deps.send({ _tag: "FileXferStart", id: this.id, name: this.name, size: this.size }).catch((err: ClientError) =>
      this.fail(err.reason === "disabled" ? new ClientError("disabled", "file transfer disabled by policy", err.extra) : err, "agent-clean"),
    )
  }

  /** Cancels the transfer: queued blocks are dropped, a half-sent one aborted, the agent told CANCELLED. */
  cancel(): void {
    this.fail(new ClientError("cancelled", `transfer of ${this.name} cancelled`))
  }

  /** FILE_XFER_STATUS from the agent. */
  onStatus(s: FileXferStatus): void {
    if (!this.active) return
    const freeBytes = s.detail?._tag === "NotEnoughSpace" ? s.detail.freeSpace : undefined
    const errorCode = s.detail?._tag === "Error" ? s.detail.errorCode : undefined
    switch (s.result) {
      case FileXferResult.CanSendData:
        if (this.status === "waiting") {
          this.status = "sending"
          this.emitStatus()
          this.pump()
        }
        return
      case FileXferResult.Success:
        this.sent = this.size
        this.deps.progress(this.progress())
        return this.finish("done")
      // The agent ended the transfer itself (and removed what it had of the file): nothing to tell it.
      case FileXferResult.Cancelled:
        return this.fail(new ClientError("cancelled", `the guest cancelled the transfer of ${this.name}`), "agent-clean")
      case FileXferResult.NotEnoughSpace:
        return this.fail(new ClientError("agent-error", `not enough space in the guest${freeBytes === undefined ? "" : ` (${freeBytes} bytes free)`}`), "agent-clean")
      case FileXferResult.SessionLocked:
        return this.fail(new ClientError("agent-error", "the guest session is locked"), "agent-clean")
      case FileXferResult.VdagentNotConnected:
        return this.fail(new ClientError("agent-not-connected", "no session agent runs in the guest"), "agent-clean")
      case FileXferResult.Disabled:
        return this.fail(new ClientError("disabled", "file transfer disabled in the guest"), "agent-clean")
      default:
        return this.fail(new ClientError("agent-error", `the guest could not write ${this.name}${errorCode === undefined ? "" : ` (error ${errorCode})`}`), "agent-clean")
    }
  }

  /**
   * Ends the transfer with `err`. `agent`: "tell" (default) when the agent may hold a partial file, so it is sent
   * FILE_XFER_STATUS (CANCELLED for a cancel, else ERROR) behind the DATA the relay already has; "agent-clean" when it
   * holds none (it said so, or it never got the START); "agent-gone" when the agent connection, the seat or the
   * session is over (the agent drops partial transfers when its client goes, spec §5.7, §6): report at once.
   */
  fail(err: ClientError, agent: "tell" | "agent-clean" | "agent-gone" = "tell"): void {
    if (this.closing !== undefined) {
      if (agent === "agent-gone") this.finish(this.closing.status, this.closing.err)
      return
    }
    if (!this.active) return
    const status: FileStatus = err.reason === "cancelled" ? "cancelled" : "failed"
    this.deps.cancelQueued(this.group, err)
    if (agent === "agent-gone") return this.finish(status, err)
    this.closing = { status, err, cancelling: agent === "tell" }
    if (agent === "tell") {
      const result = status === "cancelled" ? FileXferResult.Cancelled : FileXferResult.Error
      // Answered either way: an ack (written whole, after every DATA before it) or a notice (not written: the agent
      // connection is gone, or this console may no longer reach it).
      const told = (): void => {
        if (this.closing === undefined) return
        this.closing.cancelling = false
        this.closeIfSettled()
      }
      this.deps.send({ _tag: "FileXferStatus", id: this.id, result }).then(told, told)
    }
    this.closeIfSettled()
  }

  private closeIfSettled(): void {
    const c = this.closing
    if (c !== undefined && !c.cancelling && this.inFlight === 0) this.finish(c.status, c.err)
  }

  private finish(status: FileStatus, err?: ClientError): void {
    if (this.status !== "waiting" && this.status !== "sending") return
    this.status = status
    this.error = err
    this.owner.forget(this)
    this.emitStatus(err)
    if (err === undefined) this.settle.resolve()
    else this.settle.reject(err)
  }

  private progress(): FileProgress {
    return { id: this.id, name: this.name, size: this.size, sent: this.sent }
  }

  private emitStatus(error?: ClientError): void {
    this.deps.status({ ...this.progress(), status: this.status, ...(error === undefined ? {} : { error }) })
  }

  /** Keeps up to the window of DATA queued or unacknowledged; an empty file still sends its one empty DATA. */
  private pump(): void {
    if (this.reading || this.queuedAll || !this.active || this.status !== "sending") return
    if (this.deps.pendingBytes(this.group) >= this.deps.windowBytes) return
    this.reading = true
    const start = this.offset, end = Math.min(this.size, start + FILE_XFER_DATA_BLOCK)
    this.source.read(start, end).then(
      (block) => {
        this.reading = false
        if (!this.active || this.status !== "sending") return
        this.offset = end
        this.queuedAll = end === this.size
        this.inFlight++
        this.deps
          .send({ _tag: "FileXferData", id: this.id, data: block }, this.group)
          .then(
            () => {
              this.inFlight--
              if (!this.active || this.status !== "sending") return this.closeIfSettled()
              this.sent = Math.min(this.size, this.sent + block.length)
              this.deps.progress(this.progress())
              this.pump()
            },
            (err: ClientError) => {
              this.inFlight--
              this.fail(err)
              this.closeIfSettled()
            },
          )
        this.pump()
      },
      (err: unknown) => {
        this.reading = false
        this.fail(new ClientError("cancelled", `could not read ${this.name}: ${String(err)}`))
      },
    )
  }
}

/** The session's transfers by id. */
export class FileTransfers {
  private readonly active = new Map<number, FileTransfer>()
  /** Transfers failed while the relay could not see the agent, which may still hold them: cancelled when it is back. */
  private readonly orphans = new Set<number>()

  constructor(private readonly deps: FileTransferDeps) {}

  start(input: FileInput): FileTransfer {
    const t = new FileTransfer(toSource(input), this.deps, this)
    this.active.set(t.id, t)
    t.start()
    return t
  }

  /** Fails a transfer before it starts (caps or policy say no) while still reporting it like any other. */
  refuse(input: FileInput, err: ClientError): FileTransfer {
    const t = new FileTransfer(toSource(input), this.deps, this)
    this.active.set(t.id, t)
    t.fail(err, "agent-clean")
    return t
  }

  forget(t: FileTransfer): void {
    this.active.delete(t.id)
  }

  onStatus(s: FileXferStatus): void {
    this.active.get(s.id)?.onStatus(s)
  }

  /**
   * The agent connection, this console's seat or the session is over: every transfer fails now. `agentLost`: the relay
   * lost sight of the agent, which may still hold them (a relay restart does not end the agent connection): each is
   * told CANCELLED once the agent is seen again (harmless to another agent connection: it knows no such id).
   */
  failAll(err: ClientError, agentLost = false): void {
    for (const t of [...this.active.values()]) {
      if (agentLost) this.orphans.add(t.id)
      t.fail(err, "agent-gone")
    }
  }

  /** The agent is seen again: transfers failed while it was out of sight are cancelled on it. */
  agentBack(): void {
    for (const id of this.orphans) void this.deps.send({ _tag: "FileXferStatus", id, result: FileXferResult.Cancelled }).catch(() => {})
    this.orphans.clear()
  }

  get list(): ReadonlyArray<FileTransfer> {
    return [...this.active.values()]
  }
}
