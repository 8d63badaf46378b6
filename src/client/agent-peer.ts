// The console's side of the SPICE agent protocol once the link delivers whole messages: caps exchange (request=1
// only from the controller), MAX_CLIPBOARD, and dispatch of the agent's messages to clipboard, file transfer and
// monitors replies. It decides nothing about the link; the session tells it who we are and what the agent is.
import type { Policy, Role } from "../link/types.ts"
import { Cap, MessageType, ReplyError } from "../protocol/constants.ts"
import type { AgentMessage } from "../protocol/messages.ts"
import { agentHas, decodeFromAgent } from "./agent-codec.ts"
import { Clipboard } from "./clipboard.ts"
import { ClientError } from "./errors.ts"
import { FileTransfers } from "./file-transfer.ts"
import type { RawAgentMessage } from "./inbox.ts"
import { ReplyQueue } from "./replies.ts"
import type { ConnectOptions, SessionEvents } from "./types.ts"

const MiB = 1024 * 1024

export interface PeerDeps {
  readonly opts: ConnectOptions
  /** Our own caps words, as announced. */
  readonly caps: ReadonlyArray<number>
  readonly send: (msg: AgentMessage, group?: string) => Promise<void>
  readonly pendingBytes: (group: string) => number
  readonly cancelQueued: (group: string, err: ClientError) => void
  readonly role: () => Role
  readonly agentCaps: () => ReadonlyArray<number> | null
  readonly agentConnected: () => boolean
  readonly policy: () => Policy | undefined
  readonly emit: <K extends keyof SessionEvents>(event: K, value: SessionEvents[K]) => void
}

export class AgentPeer {
  readonly clipboard: Clipboard
  readonly files: FileTransfers
  readonly replies = new ReplyQueue()
  private maxClipboardSent = false
  /** Our request=1 went out: what we offer in the clipboard is grabbed again once the agent's caps are known. */
  private regrabDue = false

  constructor(private readonly d: PeerDeps) {
    this.clipboard = new Clipboard({
      send: (msg) => d.send(msg),
      agentCaps: d.agentCaps,
      isController: () => d.role() === "controller",
      grabbed: (selection, types) => d.emit("clipboard-grab", { selection, types }),
      released: (selection) => d.emit("clipboard-release", { selection }),
      answerLost: (err) => d.emit("error", err),
      data: (data) => d.emit("clipboard", data),
    })
    this.files = new FileTransfers({
      send: (msg, group) => d.send(msg, group),
      pendingBytes: d.pendingBytes,
      cancelQueued: d.cancelQueued,
      windowBytes: d.opts.fileWindowBytes ?? 4 * MiB,
      progress: (p) => d.emit("file-progress", p),
      status: (s) => d.emit("file-status", s),
    })
  }

  /** ANNOUNCE_CAPABILITIES request=1: the agent resets its grab serials and answers with its caps (spec §3, §11). */
  announce(): void {
    if (!this.d.agentConnected() || this.d.role() !== "controller") return
    this.clipboard.resetSerials()
    this.maxClipboardSent = false
    this.regrabDue = true
    this.d.send({ _tag: "AnnounceCapabilities", request: true, caps: this.d.caps }).catch(() => {})
    this.exchangeReady()
  }

  /**
   * Once per caps exchange, when the agent's caps are known: MAX_CLIPBOARD if the agent takes it (what spice-gtk does),
   * then what we offer in the clipboard, grabbed again (the agent gave it up with the session our request=1 ended).
   */
  exchangeReady(): void {
    if (this.d.role() !== "controller" || this.d.agentCaps() === null) return
    if (!this.maxClipboardSent && agentHas(this.d.agentCaps(), Cap.MaxClipboard)) {
      this.maxClipboardSent = true
      const max = this.d.opts.maxClipboardBytes ?? this.d.policy()?.maxClipboardBytes ?? 100 * MiB
      this.d.send({ _tag: "MaxClipboard", max: Math.min(max, 0x7fffffff) }).catch(() => {})
    }
    if (this.regrabDue) {
      this.regrabDue = false
      this.clipboard.regrab()
    }
  }

  /**
   * What depended on the agent (or on our seat with it) is over. `agentLost`: the relay lost sight of the agent, which
   * may still hold our transfers (a relay restart does not end the agent connection): they are cancelled when it is back.
   * `keepOffer`: what we offer in the clipboard outlives it, to be grabbed again on our next request=1 (not when the
   * session itself ends).
   */
  reset(err: ClientError, agentLost = false, keepOffer = true): void {
    this.clipboard.reset(err, keepOffer)
    this.files.failAll(err, agentLost)
    this.replies.failAll(err)
  }

  /**
   * An agent message that will never arrive whole (aborted by the relay, or over maxMessageBytes); `head` is what came
   * of its payload's start. A CLIPBOARD answered our oldest request in its selection: that request fails with `err`.
   */
  lost(type: number, head: Uint8Array, err: ClientError): void {
    if (type !== MessageType.Clipboard) return
    // The agent lays its messages out for the caps we announced: the selection prefix only if we took selections.
    const selection = agentHas(this.d.caps, Cap.ClipboardSelection) && head.length > 0 ? head[0]! : 0
    this.clipboard.answerLost(selection, err)
  }

  receive(message: RawAgentMessage): void {
    this.d.emit("message", message)
    const decoded = decodeFromAgent(message.type, message.data, this.d.caps)
    if (decoded._tag !== "Ok") {
      // Agents log and ignore what they cannot parse; so does the SDK, but it tells the application.
      if (decoded.reason !== "UnknownType") this.d.emit("error", new ClientError("protocol", `agent message ${message.seq}: ${decoded.detail}`))
      return
    }
    const m = decoded.value
    switch (m._tag) {
      case "AnnounceCapabilities":
        // The agent (re)started and asks who we are: its serials are 0 again, ours follow.
        if (m.request && this.d.role() === "controller") {
          this.clipboard.resetSerials()
          this.d.send({ _tag: "AnnounceCapabilities", request: false, caps: this.d.caps }).catch(() => {})
        }
        return
      case "ClipboardGrab":
      case "ClipboardRequest":
      case "Clipboard":
      case "ClipboardRelease":
        return this.clipboard.receive(m)
      case "Reply": {
        if (m.type !== MessageType.MonitorsConfig) return
        const success = m.error === ReplyError.Success
        this.replies.answer(success ? undefined : new ClientError("agent-error", "the agent could not apply the monitors config"))
        return this.d.emit("monitors-reply", { success })
      }
      case "FileXferStatus":
        return this.files.onStatus(m)
    }
  }
}
