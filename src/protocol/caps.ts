// Capability sets (spec §3): bit i lives in caps[i / 32] at bit i % 32; parse, test, build, and the relay's edits.
import { Cap } from "./constants.ts"

export type Caps = ReadonlyArray<number>

export const hasCap = (caps: Caps, bit: number): boolean => ((caps[bit >>> 5] ?? 0) & (1 << (bit & 31))) !== 0

export const buildCaps = (bits: Iterable<number>): number[] => {
  const out: number[] = [0]
  for (const bit of bits) {
    const w = bit >>> 5
    while (out.length <= w) out.push(0)
    out[w] = (out[w]! | (1 << (bit & 31))) >>> 0
  }
  return out
}

export const capBits = (caps: Caps): number[] => {
  const out: number[] = []
  caps.forEach((word, w) => {
    for (let b = 0; b < 32; b++) if ((word >>> b) & 1) out.push(w * 32 + b)
  })
  return out
}

const setBit = (caps: Caps, bit: number, on: boolean): number[] => {
  const out = [...caps]
  const w = bit >>> 5
  while (out.length <= w) out.push(0)
  out[w] = (on ? out[w]! | (1 << (bit & 31)) : out[w]! & ~(1 << (bit & 31))) >>> 0
  return out
}

export const withCap = (caps: Caps, bit: number): number[] => setBit(caps, bit, true)
export const withoutCap = (caps: Caps, bit: number): number[] => setBit(caps, bit, false)

export interface CapsPolicy {
  readonly copyPaste: boolean
  readonly fileTransfer: boolean
}

/**
 * The edits the SPICE server makes to agent→client caps (`reds_adjust_agent_capabilities`): copy-paste off clears
 * CLIPBOARD, CLIPBOARD_BY_DEMAND and CLIPBOARD_SELECTION; file transfer off sets FILE_XFER_DISABLED.
 */
export const editAgentCaps = (caps: Caps, policy: CapsPolicy): number[] => {
  let out = [...caps]
  if (!policy.copyPaste) for (const bit of [Cap.Clipboard, Cap.ClipboardByDemand, Cap.ClipboardSelection]) out = withoutCap(out, bit)
  if (!policy.fileTransfer) out = withCap(out, Cap.FileXferDisabled)
  return out
}
