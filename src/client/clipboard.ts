// Clipboard sharing as SPICE clients do it (spec §2, §7 item 7): grab / request / data / release per selection, the
// payload format chosen from both sides' caps, and the grab-serial rule (one serial per selection, reset when caps are
// exchanged with request=1; a grab with a lower serial than ours is stale and ignored; on a tie the client wins).
import { Cap, ClipboardType, MessageType } from "../protocol/constants.ts"
import { hasCap } from "../protocol/caps.ts"
import {
  type ClipboardFormat,
  type ClipboardMessage,
  decodeClipboardMessage,
  encodeClipboard,
  encodeClipboardGrab,
  encodeClipboardRelease,
  encodeClipboardRequest,
} from "./agent-codec.ts"
import { ClientError } from "./errors.ts"
import type { ClipboardData } from "./types.ts"

export interface ClipboardItem {
  readonly type: number
  readonly data: Uint8Array
}

export interface ClipboardDeps {
  readonly send: (type: number, payload: Uint8Array) => Promise<void>
  readonly ourCaps: () => ReadonlyArray<number>
  readonly agentCaps: () => ReadonlyArray<number> | null
  /** Only the controller answers the agent and enforces serials: a viewer merely watches. */
  readonly isController: () => boolean
  readonly grabbed: (selection: number, types: ReadonlyArray<number>) => void
  readonly released: (selection: number) => void
  readonly data: (data: ClipboardData) => void
}

const utf8 = new TextEncoder()
const utf8Decode = new TextDecoder()

interface Pending {
  readonly type: number
  readonly resolve: (d: ClipboardData) => void
  readonly reject: (e: ClientError) => void
}

export class Clipboard {
  private serials = [0, 0, 0]
  /** What this console offers the guest, per selection (set by a grab, cleared by a guest grab or a release). */
  private readonly owned = new Map<number, ReadonlyArray<ClipboardItem>>()
  /** What the guest offers, per selection. */
  readonly guest = new Map<number, ReadonlyArray<number>>()
  /** Our requests waiting for the guest's data, in order, per selection (the agent answers in order). */
  private readonly pending = new Map<number, Pending[]>()

  constructor(private readonly deps: ClipboardDeps) {}

  format(): ClipboardFormat {
    const ours = this.deps.ourCaps(), theirs = this.deps.agentCaps() ?? []
    return {
      selection: hasCap(ours, Cap.ClipboardSelection) && hasCap(theirs, Cap.ClipboardSelection),
      serial: hasCap(ours, Cap.ClipboardGrabSerial) && hasCap(theirs, Cap.ClipboardGrabSerial),
    }
  }

  private check(selection: number): void {
    const caps = this.deps.agentCaps()
    if (caps === null || !hasCap(caps, Cap.ClipboardByDemand))
      throw new ClientError("not-supported", "the agent does not share its clipboard (no CLIPBOARD_BY_DEMAND, or copy-paste disabled by policy)")
    if (selection !== 0 && !this.format().selection) throw new ClientError("not-supported", "the agent has no clipboard selections other than CLIPBOARD")
  }

  /** Caps were exchanged with request=1 (a new client for the agent): both sides start their serials again. */
  resetSerials(): void {
    this.serials = [0, 0, 0]
  }

  /** The agent went away or the session was replaced: ownership and waiting requests die with it. */
  reset(err: ClientError): void {
    this.resetSerials()
    this.owned.clear()
    this.guest.clear()
    for (const list of this.pending.values()) for (const p of list) p.reject(err)
    this.pending.clear()
  }

  /** Offers `items` to the guest: CLIPBOARD_GRAB now, the data when the guest asks for it. */
  async grab(selection: number, items: ReadonlyArray<ClipboardItem>): Promise<void> {
    this.check(selection)
    const fmt = this.format()
    const caps = this.deps.agentCaps() ?? []
    const sends: Promise<void>[] = []
    if (this.owned.has(selection) && !hasCap(caps, Cap.ClipboardNoReleaseOnRegrab))
      sends.push(this.deps.send(MessageType.ClipboardRelease, encodeClipboardRelease(fmt, selection)))
    this.owned.set(selection, items)
    this.guest.delete(selection)
    const serial = this.serials[selection] ?? 0
    if (fmt.serial) this.serials[selection] = serial + 1
    sends.push(this.deps.send(MessageType.ClipboardGrab, encodeClipboardGrab(fmt, selection, serial, items.map((i) => i.type))))
    await Promise.all(sends)
  }

  async release(selection: number): Promise<void> {
    if (!this.owned.delete(selection)) return
    this.check(selection)
    await this.deps.send(MessageType.ClipboardRelease, encodeClipboardRelease(this.format(), selection))
  }

  /** Asks the guest for its clipboard in `type`; resolves with the data (empty when the guest has none). */
  request(selection: number, type: number): Promise<ClipboardData> {
    this.check(selection)
    return new Promise((resolve, reject) => {
      const list = this.pending.get(selection) ?? []
      list.push({ type, resolve, reject })
      this.pending.set(selection, list)
      this.deps.send(MessageType.ClipboardRequest, encodeClipboardRequest(this.format(), selection, type)).catch((err: ClientError) => {
        const at = list.findIndex((p) => p.resolve === resolve)
        if (at !== -1) list.splice(at, 1)
        reject(err)
      })
    })
  }

  /** Handles one of the four clipboard messages from the agent; returns false if it was malformed. */
  receive(type: number, payload: Uint8Array): boolean {
    const m = decodeClipboardMessage(this.format(), type, payload)
    if (m === undefined) return false
    this.dispatch(m)
    return true
  }

  private dispatch(m: ClipboardMessage): void {
    switch (m.kind) {
      case "grab": {
        if (this.deps.isController() && m.serial !== undefined) {
          const ours = this.serials[m.selection] ?? 0
          if (m.serial < ours) return // stale: we grabbed since (or it lost a tie), ours wins
          this.serials[m.selection] = m.serial + 1
        }
        this.owned.delete(m.selection)
        this.guest.set(m.selection, m.types)
        return this.deps.grabbed(m.selection, m.types)
      }
      case "release":
        if (!this.guest.delete(m.selection)) return
        return this.deps.released(m.selection)
      case "request": {
        if (!this.deps.isController()) return
        const item = this.owned.get(m.selection)?.find((i) => i.type === m.type)
        // An empty answer tells the guest the data is not available, so its paste does not hang.
        void this.deps
          .send(MessageType.Clipboard, encodeClipboard(this.format(), m.selection, m.type, item?.data ?? new Uint8Array(0)))
          .catch(() => {})
        return
      }
      case "data": {
        const data: ClipboardData = {
          selection: m.selection,
          type: m.type,
          data: m.data,
          text: m.type === ClipboardType.Utf8Text ? this.fromGuestText(m.data) : undefined,
        }
        this.pending.get(m.selection)?.shift()?.resolve(data)
        return this.deps.data(data)
      }
    }
  }

  /** Browser text uses "\n"; a guest that announces CRLF line ends (Windows) gets and gives "\r\n". */
  toGuestText(text: string): Uint8Array {
    const crlf = hasCap(this.deps.agentCaps() ?? [], Cap.GuestLineendCrlf)
    return utf8.encode(crlf ? text.replace(/\r?\n/g, "\r\n") : text)
  }

  fromGuestText(bytes: Uint8Array): string {
    // X clipboard owners may include a trailing NUL; it is not part of the text.
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0 ? bytes.length - 1 : bytes.length
    const text = utf8Decode.decode(bytes.subarray(0, end))
    return hasCap(this.deps.agentCaps() ?? [], Cap.GuestLineendCrlf) ? text.replace(/\r\n/g, "\n") : text
  }
}
