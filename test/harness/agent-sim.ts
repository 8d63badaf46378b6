// A guest agent simulator that speaks the vdagent protocol the way spice-vdagent 0.22.1 does (spec §6, §11): caps
// announce with request=1 when the port first opens, answers to request=1, MONITORS_CONFIG → REPLY on the incoming
// port (only for exactly 8 + 20n bytes), clipboard both ways with grab serials in the client's layout, file transfer
// into a folder (START → CAN_SEND_DATA, DATA…, SUCCESS), CLIENT_DISCONNECTED resets, one chunk per outgoing message.
// This file is the protocol behaviour only; agent-sim-server.ts puts it behind the emulated QEMU chardev.
import { MessageAssembler } from "../../src/protocol/assembler.ts"
import { hasCap } from "../../src/protocol/caps.ts"
import { Cap, ClipboardType, FileXferResult, MessageType, Port, ReplyError, VD_AGENT_MAX_DATA_SIZE } from "../../src/protocol/constants.ts"
import { encodeChunkHeader, encodeMessageHeader } from "../../src/protocol/header.ts"
import { codecOptionsFor, decodeMessage, encodeMessage } from "../../src/protocol/message-codec.ts"
import type { AgentMessage, MonitorConfig } from "../../src/protocol/messages.ts"
import { SPICE_VDAGENT_CAPS } from "../../src/protocol/known.ts"

/** The caps word the real spice-vdagent 0.22.1 announces (spec §11). */
export const SIM_AGENT_CAPS: ReadonlyArray<number> = [SPICE_VDAGENT_CAPS]
/** At most this many transfers at once, as spice-vdagentd. */
const MAX_TRANSFERS = 128

export interface FileSink {
  /** Creates a new file for `name` in the transfer folder (never overwriting); returns its path. */
  create(name: string): Promise<string>
  append(path: string, data: Uint8Array): Promise<void>
  remove(path: string): Promise<void>
}

export type SimEvent =
  | { readonly _tag: "Log"; readonly line: string }
  | { readonly _tag: "ClientCaps"; readonly caps: ReadonlyArray<number> }
  | { readonly _tag: "Monitors"; readonly monitors: ReadonlyArray<MonitorConfig> }
  | { readonly _tag: "ClientClipboard"; readonly selection: number; readonly type: number; readonly data: Uint8Array }
  | { readonly _tag: "FileReceived"; readonly path: string; readonly size: number }
  | { readonly _tag: "Mouse"; readonly x: number; readonly y: number; readonly buttons: number; readonly display: number }
  | { readonly _tag: "ClientDisconnected" }

export interface AgentSimOptions {
  readonly write: (bytes: Uint8Array) => void
  readonly files: FileSink
  readonly event: (e: SimEvent) => void
  /**
   * Fetch the client's clipboard as soon as it grabs, as a desktop clipboard manager in the guest does, so that what
   * the console copied shows up in the guest without a paste (default true).
   */
  readonly clipboardManager?: boolean
}

interface Transfer {
  /** Resolved once the file exists (START is handled at once, as the agent does; the disk catches up). */
  path: string
  readonly size: number
  received: number
  /** Writes to the file, in order; SUCCESS goes after the last one. */
  chain: Promise<void>
}

interface GuestClip {
  readonly type: number
  readonly data: Uint8Array
}

export class AgentSim {
  private readonly assembler = new MessageAssembler({ maxChunkSize: VD_AGENT_MAX_DATA_SIZE, maxMessageSize: 0x7fffffff, ports: [Port.Client, Port.Server] })
  /** Client caps from its last announce; null until one arrives (the daemon then drops clipboard messages). */
  clientCaps: ReadonlyArray<number> | null = null
  private serials = [0, 0, 0]
  private announced = false
  /** Guest-owned clipboard contents per selection. */
  private readonly guestClip = new Map<number, GuestClip>()
  /** Types the client offers per selection (it grabbed). */
  private readonly clientOffers = new Map<number, ReadonlyArray<number>>()
  /** Guest apps waiting for the client's data, oldest first, per selection. */
  private readonly waiting = new Map<number, Array<(d: Uint8Array) => void>>()
  private readonly transfers = new Map<number, Transfer>()
  monitors: ReadonlyArray<MonitorConfig> = []
  maxClipboard = -1

  constructor(private readonly o: AgentSimOptions) {}

  /** The host side connected: the first time, the daemon's port-open announce goes out (the real one asks once). */
  hostConnected(): void {
    this.assembler.reset()
    if (this.announced) return
    this.announced = true
    this.send(Port.Client, { _tag: "AnnounceCapabilities", request: true, caps: SIM_AGENT_CAPS })
  }

  /** The host side went away: like the daemon's port reopen, parsers and transfers are gone; caps and serials stay. */
  hostDisconnected(): void {
    this.assembler.reset()
    this.cancelTransfers("host disconnected")
  }

  receive(bytes: Uint8Array): void {
    this.assembler.push(bytes, (port, header, body) => this.handle(port, header.type, body))
    const err = this.assembler.error
    if (err !== undefined) {
      // spice-vdagentd drops and reopens its port on a chunk it refuses; the stream then starts afresh.
      this.log(`port error (${err.reason}: ${err.detail}); reopening`)
      this.assembler.reset()
      this.cancelTransfers("port reopened")
    }
  }

  /** A guest app copies: the agent grabs for the client (when a client has announced itself). */
  setGuestClipboard(data: Uint8Array, type: number = ClipboardType.Utf8Text, selection = 0): void {
    this.guestClip.set(selection, { type, data })
    this.clientOffers.delete(selection)
    if (this.clientCaps === null) return this.log("guest clipboard set; no client announced, so no grab is sent")
    const serial = this.serials[selection] ?? 0
    this.serials[selection] = serial + 1
    this.send(Port.Client, { _tag: "ClipboardGrab", selection, serial, types: [type] })
  }

  /** A guest app pastes: its own clipboard, or the client's data fetched with a REQUEST. */
  getGuestClipboard(selection = 0): Promise<Uint8Array | undefined> {
    const offers = this.clientOffers.get(selection)
    if (offers === undefined) return Promise.resolve(this.guestClip.get(selection)?.data)
    return this.requestFromClient(selection, offers.includes(ClipboardType.Utf8Text) ? ClipboardType.Utf8Text : offers[0]!)
  }

  private requestFromClient(selection: number, type: number): Promise<Uint8Array> {
    return new Promise((resolve) => {
      const list = this.waiting.get(selection) ?? []
      list.push(resolve)
      this.waiting.set(selection, list)
      this.send(Port.Client, { _tag: "ClipboardRequest", selection, dataType: type })
    })
  }

  private handle(port: number, type: number, body: Uint8Array): void {
    const layout = codecOptionsFor(this.clientCaps ?? [])
    const decoded = decodeMessage(type, body, layout)
    if (decoded._tag !== "Ok") return this.log(`dropped message type ${type} (${body.length} bytes): ${decoded.detail}`)
    const m = decoded.value
    switch (m._tag) {
      case "AnnounceCapabilities":
        this.clientCaps = m.caps
        this.o.event({ _tag: "ClientCaps", caps: m.caps })
        if (!m.request) return
        // A new client: serials restart and what the previous client put in the guest clipboards is released.
        this.serials = [0, 0, 0]
        this.clientOffers.clear()
        return this.send(port, { _tag: "AnnounceCapabilities", request: false, caps: SIM_AGENT_CAPS })
      case "MonitorsConfig":
        // The real daemon wants exactly 8 + 20n bytes: a config with the physical-size array is dropped unanswered.
        if (body.length !== 8 + 20 * m.monitors.length) return this.log(`MONITORS_CONFIG of ${body.length} bytes dropped (wants 8 + 20n)`)
        this.monitors = m.monitors
        this.o.event({ _tag: "Monitors", monitors: m.monitors })
        return this.send(port, { _tag: "Reply", type: MessageType.MonitorsConfig, error: ReplyError.Success })
      case "ClipboardGrab":
      case "ClipboardRequest":
      case "Clipboard":
      case "ClipboardRelease":
        return this.clipboard(m)
      case "FileXferStart":
      case "FileXferData":
      case "FileXferStatus":
        return this.fileXfer(port, m)
      case "ClientDisconnected":
        this.assembler.resetPort(Port.Client)
        this.clientOffers.clear()
        this.cancelTransfers("client disconnected")
        return this.o.event({ _tag: "ClientDisconnected" })
      case "MouseState":
        return this.o.event({ _tag: "Mouse", x: m.x, y: m.y, buttons: m.buttons, display: m.displayId })
      case "MaxClipboard":
        this.maxClipboard = m.max
        return
      default:
        return this.log(`ignored ${m._tag}`)
    }
  }

  private clipboard(m: Extract<AgentMessage, { _tag: "ClipboardGrab" | "ClipboardRequest" | "Clipboard" | "ClipboardRelease" }>): void {
    if (this.clientCaps === null || !hasCap(this.clientCaps, Cap.ClipboardByDemand)) return this.log(`${m._tag} without client caps dropped`)
    switch (m._tag) {
      case "ClipboardGrab": {
        if (m.serial !== undefined) {
          const ours = this.serials[m.selection] ?? 0
          // spice-vdagentd: equal → accept and count; one below → the client wins a tie; anything else is stale.
          if (m.serial === ours) this.serials[m.selection] = ours + 1
          else if (m.serial !== ours - 1) return this.log(`grab discarded: serial ${m.serial}, session serial ${ours}`)
        }
        this.guestClip.delete(m.selection)
        this.clientOffers.set(m.selection, m.types)
        if ((this.o.clipboardManager ?? true) && m.types.length > 0) {
          const type = m.types.includes(ClipboardType.Utf8Text) ? ClipboardType.Utf8Text : m.types[0]!
          void this.requestFromClient(m.selection, type).then((data) => this.o.event({ _tag: "ClientClipboard", selection: m.selection, type, data }))
        }
        return
      }
      case "ClipboardRelease":
        this.clientOffers.delete(m.selection)
        return
      case "Clipboard": {
        const data = this.maxClipboard >= 0 && m.data.length > this.maxClipboard ? new Uint8Array(0) : m.data.slice()
        this.waiting.get(m.selection)?.shift()?.(data)
        return
      }
      case "ClipboardRequest": {
        const own = this.guestClip.get(m.selection)
        const data = own !== undefined && own.type === m.dataType ? own.data : new Uint8Array(0)
        // The daemon replaces data over the client's MAX_CLIPBOARD with an empty CLIPBOARD of that type.
        const fits = this.maxClipboard < 0 || data.length <= this.maxClipboard
        return this.send(Port.Client, { _tag: "Clipboard", selection: m.selection, dataType: m.dataType, data: fits ? data : new Uint8Array(0) })
      }
    }
  }

  private fileXfer(port: number, m: Extract<AgentMessage, { _tag: "FileXferStart" | "FileXferData" | "FileXferStatus" }>): void {
    const status = (id: number, result: number): void => this.send(port, { _tag: "FileXferStatus", id, result })
    switch (m._tag) {
      case "FileXferStart": {
        if (this.transfers.has(m.id) || this.transfers.size >= MAX_TRANSFERS) return status(m.id, FileXferResult.Error)
        const id = m.id
        const t: Transfer = { path: "", size: m.size, received: 0, chain: Promise.resolve() }
        this.transfers.set(id, t)
        t.chain = this.o.files.create(m.name).then(
          (path) => {
            t.path = path
            this.log(`file transfer ${id}: ${m.name} (${m.size} bytes) → ${path}`)
            status(id, FileXferResult.CanSendData)
          },
          (err: unknown) => {
            this.transfers.delete(id)
            this.log(`file transfer ${id}: cannot create ${m.name}: ${String(err)}`)
            status(id, FileXferResult.Error)
            throw err
          },
        )
        if (m.size === 0) this.finishTransfer(port, id)
        return
      }
      case "FileXferData": {
        const t = this.transfers.get(m.id)
        if (t === undefined) return
        t.received += m.data.length
        if (t.received > t.size) {
          this.transfers.delete(m.id)
          this.discard(t)
          return status(m.id, FileXferResult.Error)
        }
        const data = m.data.slice()
        t.chain = t.chain.then(() => this.o.files.append(t.path, data))
        if (t.received === t.size) this.finishTransfer(port, m.id)
        return
      }
      case "FileXferStatus": {
        const t = this.transfers.get(m.id)
        if (t === undefined) return
        this.transfers.delete(m.id)
        this.log(`file transfer ${m.id} ended by the client (result ${m.result})`)
        this.discard(t)
        return
      }
    }
  }

  private finishTransfer(port: number, id: number): void {
    const t = this.transfers.get(id)
    if (t === undefined) return
    this.transfers.delete(id)
    t.chain.then(
      () => {
        this.send(port, { _tag: "FileXferStatus", id, result: FileXferResult.Success })
        this.o.event({ _tag: "FileReceived", path: t.path, size: t.size })
      },
      () => this.send(port, { _tag: "FileXferStatus", id, result: FileXferResult.Error }),
    )
  }

  /** A transfer that will not complete leaves no partial file behind. */
  private discard(t: Transfer): void {
    t.chain = t.chain.then(() => (t.path === "" ? undefined : this.o.files.remove(t.path))).catch(() => {})
  }

  private cancelTransfers(why: string): void {
    for (const [id, t] of this.transfers) {
      this.log(`file transfer ${id} cancelled: ${why}`)
      this.discard(t)
    }
    this.transfers.clear()
  }

  /** Every outgoing message is one chunk of any size, as the real agent writes them (spec §11). */
  private send(port: number, msg: AgentMessage): void {
    const r = encodeMessage(msg, { ...codecOptionsFor(this.clientCaps ?? []), detailedErrors: hasCap(this.clientCaps ?? [], Cap.FileXferDetailedErrors) })
    if (r._tag !== "Ok") return this.log(`cannot encode ${msg._tag}: ${r.detail}`)
    const body = r.value
    const out = new Uint8Array(8 + 20 + body.length)
    encodeChunkHeader({ port, size: 20 + body.length }, out, 0)
    encodeMessageHeader({ type: MessageType[msg._tag], size: body.length }, out, 8)
    out.set(body, 28)
    this.o.write(out)
  }

  private log(line: string): void {
    this.o.event({ _tag: "Log", line })
  }
}
