// Clipboard sharing as SPICE clients do it (spec §2, §7 item 7): grab / request / data / release per selection, and
// the grab-serial rule (one serial per selection, reset when caps are exchanged with request=1; on a tie the client
// wins). A guest grab is ignored only when it crossed one of ours (its serial at or below the one we last sent since the
// reset): the console cannot see exactly where in the agent's stream its serials restart (a grab the agent made before
// it took our request=1 arrives after we reset ours), so a lower serial that crossed nothing is taken, and counted from.
import { ClipboardType } from "../protocol/constants.ts"
import type { AgentMessage } from "../protocol/messages.ts"
import { Cap, agentHas } from "./agent-codec.ts"
import { ClientError } from "./errors.ts"
import type { ClipboardData } from "./types.ts"

export interface ClipboardItem {
  readonly type: number
  readonly data: Uint8Array
}

type ClipboardMessage = Extract<AgentMessage, { _tag: "ClipboardGrab" | "ClipboardRequest" | "Clipboard" | "ClipboardRelease" }>

export interface ClipboardDeps {
  readonly send: (msg: ClipboardMessage) => Promise<void>
  readonly agentCaps: () => ReadonlyArray<number> | null
  /** Only the controller answers the agent and keeps serials: a viewer merely watches. */
  readonly isController: () => boolean
  readonly grabbed: (selection: number, types: ReadonlyArray<number>) => void
  readonly released: (selection: number) => void
  readonly data: (data: ClipboardData) => void
  /**
   * Our answer to a guest paste was not written, and no relay notice said so (this console became a viewer or its link
   * ended while it was being sent): the console is told, since nothing else will tell it the paste failed.
   */
  readonly answerLost: (err: ClientError) => void
}

const utf8 = new TextEncoder()
const utf8Decode = new TextDecoder()

interface Pending {
  readonly resolve: (d: ClipboardData) => void
  readonly reject: (e: ClientError) => void
}

export class Clipboard {
  private serials = [0, 0, 0]
  /** The serial of our last grab per selection since the serials were reset; -1: none. */
  private lastSent = [-1, -1, -1]
  /** What this console offers the guest, per selection (set by our grab, cleared by a guest grab or a release). */
  private readonly owned = new Map<number, ReadonlyArray<ClipboardItem>>()
  /** What the guest offers, per selection. */
  readonly guest = new Map<number, ReadonlyArray<number>>()
  /** Our requests waiting for the guest's data, oldest first, per selection (the agent answers in order). */
  private readonly pending = new Map<number, Pending[]>()

  constructor(private readonly deps: ClipboardDeps) {}

  private check(selection: number): void {
    const caps = this.deps.agentCaps()
    if (!agentHas(caps, Cap.ClipboardByDemand))
      throw new ClientError("not-supported", "the agent does not share its clipboard (no CLIPBOARD_BY_DEMAND, or copy-paste disabled by policy)")
    if (selection !== 0 && !agentHas(caps, Cap.ClipboardSelection)) throw new ClientError("not-supported", "the agent has only the CLIPBOARD selection")
  }

  /** Caps were exchanged with request=1 (a new client for the agent): both sides start their serials again. */
  resetSerials(): void {
    this.serials = [0, 0, 0]
    this.lastSent = [-1, -1, -1]
  }

  /**
   * The agent session ended (the agent went away, a new seat, the session closed): serials, the guest's offers and
   * waiting requests die with it. What this console offers stays (`keepOffer`) to be offered to the agent again once
   * we introduce ourselves (regrab): the agent let it go with the old session, the console still holds it.
   */
  reset(err: ClientError, keepOffer: boolean): void {
    this.resetSerials()
    if (!keepOffer) this.owned.clear()
    this.guest.clear()
    for (const list of this.pending.values()) for (const p of list) p.reject(err)
    this.pending.clear()
  }

  /**
   * The link dropped: an answer half received is aborted and one sent during the gap is not replayed (docs/protocol.md,
   * client link §5), so waiting requests fail now rather than hang; ownership and serials live on with the seat.
   */
  interrupted(err: ClientError): void {
    for (const list of this.pending.values()) for (const p of list) p.reject(err)
    this.pending.clear()
  }

  /**
   * The guest's answer to our oldest request in `selection` will not arrive whole (the relay aborted it, or it was over
   * the size cap): that request fails now with `err`; later ones keep waiting for their own answers.
   */
  answerLost(selection: number, err: ClientError): void {
    this.pending.get(selection)?.shift()?.reject(err)
  }

  /** Offers `items` to the guest: CLIPBOARD_GRAB now, the data when the guest asks for it. */
  async grab(selection: number, items: ReadonlyArray<ClipboardItem>): Promise<void> {
    this.check(selection)
    const sends: Promise<void>[] = []
    if (this.owned.has(selection) && !agentHas(this.deps.agentCaps(), Cap.ClipboardNoReleaseOnRegrab))
      sends.push(this.deps.send({ _tag: "ClipboardRelease", selection }))
    this.owned.set(selection, items)
    this.guest.delete(selection)
    const serial = this.nextSerial(selection)
    const sent = this.deps.send({ _tag: "ClipboardGrab", selection, serial, types: items.map((i) => i.type) })
    // Not written: the guest never took it, so it is not ours to offer again either.
    sends.push(sent.catch((err: unknown) => {
      if (this.owned.get(selection) === items) this.owned.delete(selection)
      throw err
    }))
    await Promise.all(sends)
  }

  /**
   * After our ANNOUNCE request=1, once the agent's caps are known: every selection we still offer is grabbed again,
   * counted from the serials the announce reset (spice-vdagentd gave the old session's grabs up at that request).
   */
  regrab(): void {
    const caps = this.deps.agentCaps()
    if (!agentHas(caps, Cap.ClipboardByDemand)) return
    for (const [selection, items] of this.owned) {
      if (selection !== 0 && !agentHas(caps, Cap.ClipboardSelection)) continue
      const serial = this.nextSerial(selection)
      void this.deps.send({ _tag: "ClipboardGrab", selection, serial, types: items.map((i) => i.type) }).catch(() => {})
    }
  }

  /** The sender puts its current serial in the grab, then counts it. */
  private nextSerial(selection: number): number {
    const serial = this.serials[selection] ?? 0
    this.serials[selection] = serial + 1
    this.lastSent[selection] = serial
    return serial
  }

  async release(selection: number): Promise<void> {
    if (!this.owned.delete(selection)) return
    this.check(selection)
    await this.deps.send({ _tag: "ClipboardRelease", selection })
  }

  /** Asks the guest for its clipboard in `type`; resolves with the data (empty when the guest has none). */
  request(selection: number, type: number): Promise<ClipboardData> {
    this.check(selection)
    return new Promise((resolve, reject) => {
      const list = this.pending.get(selection) ?? []
      const entry = { resolve, reject }
      list.push(entry)
      this.pending.set(selection, list)
      this.deps.send({ _tag: "ClipboardRequest", selection, dataType: type }).catch((err: ClientError) => {
        const at = list.indexOf(entry)
        if (at !== -1) list.splice(at, 1)
        reject(err)
      })
    })
  }

  receive(m: ClipboardMessage): void {
    switch (m._tag) {
      case "ClipboardGrab": {
        if (this.deps.isController() && m.serial !== undefined) {
          // The agent made it before it saw our last grab (a tie, or it crossed ours): ours wins, the agent took ours.
          if (m.serial <= (this.lastSent[m.selection] ?? -1)) return
          this.serials[m.selection] = m.serial + 1
        }
        this.owned.delete(m.selection)
        this.guest.set(m.selection, m.types)
        return this.deps.grabbed(m.selection, m.types)
      }
      case "ClipboardRelease":
        if (!this.guest.delete(m.selection)) return
        return this.deps.released(m.selection)
      case "ClipboardRequest": {
        if (!this.deps.isController()) return
        const item = this.owned.get(m.selection)?.find((i) => i.type === m.dataType)
        // An empty answer tells the guest the data is not available, so its paste does not hang.
        void this.deps.send({ _tag: "Clipboard", selection: m.selection, dataType: m.dataType, data: item?.data ?? new Uint8Array(0) }).catch((err: unknown) => {
          // A relay notice about it was already emitted as a `notice` event.
          if (err instanceof ClientError && err.extra.notice === undefined)
            this.deps.answerLost(new ClientError(err.reason, `the answer to the guest's paste was not delivered: ${err.detail}`))
        })
        return
      }
      case "Clipboard": {
        const data = guestData(m.selection, m.dataType, m.data, agentHas(this.deps.agentCaps(), Cap.GuestLineendCrlf))
        this.pending.get(m.selection)?.shift()?.resolve(data)
        return this.deps.data(data)
      }
    }
  }

  /** Browser text uses "\n"; a guest that announces CRLF line ends (Windows) gets and gives "\r\n". */
  toGuestText(text: string): Uint8Array {
    return utf8.encode(agentHas(this.deps.agentCaps(), Cap.GuestLineendCrlf) ? text.replace(/\r?\n/g, "\r\n") : text)
  }

}

/**
 * The guest's clipboard data as the console gets it. `text` (UTF8_TEXT only) is decoded when first read, then kept: a
 * console that takes the bytes (or ignores the event) does not pay for it — ~30 ms and a 10 M-character string per
 * 10 MiB. `crlf`: the agent announced CRLF line ends (Windows), as it did when the data came.
 */
const guestData = (selection: number, type: number, bytes: Uint8Array, crlf: boolean): ClipboardData => {
  let text: string | undefined | null = type === ClipboardType.Utf8Text ? null : undefined
  return {
    selection,
    type,
    data: bytes,
    get text(): string | undefined {
      if (text === null) text = fromGuestText(bytes, crlf)
      return text
    },
  }
}

const fromGuestText = (bytes: Uint8Array, crlf: boolean): string => {
  // X clipboard owners may include a trailing NUL; it is not part of the text.
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0 ? bytes.length - 1 : bytes.length
  const text = utf8Decode.decode(bytes.subarray(0, end))
  return crlf ? text.replace(/\r\n/g, "\n") : text
}
