// Codecs for VDAgentFileXferStartMessage, VDAgentFileXferStatusMessage (with the detailed errors) and
// VDAgentFileXferDataMessage (spec §2, §7 item 8).
import { FileXferResult } from "./constants.ts"
import { type Parsed, invalid, parsed } from "./decoded.ts"
import { formatFileXferKeys, parseFileXferKeys } from "./key-file.ts"
import type { FileXferData, FileXferStart, FileXferStatus } from "./messages.ts"
import { Writer, badSize, decodeUtf8, encodeUtf8, u32At, u64At } from "./wire.ts"

export const decodeFileXferStart = (p: Uint8Array): Parsed<FileXferStart> => {
  if (p.length < 4) return badSize("FILE_XFER_START", p.length, "≥ 4")
  const nul = p.indexOf(0, 4)
  if (nul < 0) return invalid("BadField", 4, "FILE_XFER_START key file is not NUL-terminated")
  const text = decodeUtf8(p.subarray(4, nul))
  if (text === undefined) return invalid("BadField", 4, "FILE_XFER_START key file is not UTF-8")
  const keys = parseFileXferKeys(text)
  if (keys._tag === "Error") return invalid("BadField", 4, `FILE_XFER_START key file: ${keys.detail}`)
  return parsed({ _tag: "FileXferStart", id: u32At(p, 0), ...keys.value })
}

export const encodeFileXferStart = (m: FileXferStart): Parsed<Uint8Array> => {
  if (!Number.isSafeInteger(m.size) || m.size < 0) return invalid("BadField", 4, `size ${m.size} is not a safe u64`)
  const text = encodeUtf8(formatFileXferKeys(m))
  if (text.includes(0)) return invalid("BadField", 4, "the key file would contain NUL")
  return new Writer(4 + text.length + 1).u32(m.id, "id").bytes(text).u8(0, "NUL").result()
}

const ERROR_DETAIL = 5
const NOT_ENOUGH_SPACE_DETAIL = 8

/** ≥ 8 bytes; a detail is read only when the result calls for one and it fits (spice-common). */
export const decodeFileXferStatus = (p: Uint8Array): Parsed<FileXferStatus> => {
  if (p.length < 8) return badSize("FILE_XFER_STATUS", p.length, "≥ 8")
  const id = u32At(p, 0)
  const result = u32At(p, 4)
  if (result === FileXferResult.Error && p.length >= 8 + ERROR_DETAIL)
    return parsed({ _tag: "FileXferStatus", id, result, detail: { _tag: "Error", errorType: p[8]!, errorCode: u32At(p, 9) } })
  if (result === FileXferResult.NotEnoughSpace && p.length >= 8 + NOT_ENOUGH_SPACE_DETAIL) {
    const freeSpace = u64At(p, 8)
    if (freeSpace === undefined) return invalid("UnsafeInteger", 8, "NOT_ENOUGH_SPACE free bytes exceed 2^53 − 1")
    return parsed({ _tag: "FileXferStatus", id, result, detail: { _tag: "NotEnoughSpace", freeSpace } })
  }
  return parsed({ _tag: "FileXferStatus", id, result })
}

/** Without the peer's FILE_XFER_DETAILED_ERRORS the detail is dropped and results ≥ 4 fold into ERROR. */
export const encodeFileXferStatus = (m: FileXferStatus, detailedErrors: boolean): Parsed<Uint8Array> => {
  if (!detailedErrors) {
    const result = m.result >= FileXferResult.NotEnoughSpace ? FileXferResult.Error : m.result
    return new Writer(8).u32(m.id, "id").u32(result, "result").result()
  }
  const d = m.detail
  if (d === undefined) return new Writer(8).u32(m.id, "id").u32(m.result, "result").result()
  if (d._tag === "Error" && m.result === FileXferResult.Error)
    return new Writer(8 + ERROR_DETAIL).u32(m.id, "id").u32(m.result, "result").u8(d.errorType, "errorType").u32(d.errorCode, "errorCode").result()
  if (d._tag === "NotEnoughSpace" && m.result === FileXferResult.NotEnoughSpace)
    return new Writer(8 + NOT_ENOUGH_SPACE_DETAIL).u32(m.id, "id").u32(m.result, "result").u64(d.freeSpace, "freeSpace").result()
  return invalid("BadField", 8, `detail ${d._tag} does not belong to result ${m.result}`)
}

/** u32 id, u64 size, then exactly `size` bytes, handed out as a view of the payload. */
export const decodeFileXferData = (p: Uint8Array): Parsed<FileXferData> => {
  if (p.length < 12) return badSize("FILE_XFER_DATA", p.length, "≥ 12")
  const size = u64At(p, 4)
  if (size !== p.length - 12) return badSize("FILE_XFER_DATA", p.length, `= 12 + declared size ${size ?? "≥ 2^53"}`)
  return parsed({ _tag: "FileXferData", id: u32At(p, 0), data: p.subarray(12) })
}

export const encodeFileXferData = (m: FileXferData): Parsed<Uint8Array> => writeFileXferDataHead(new Writer(12 + m.data.length), m).bytes(m.data).result()

/** FILE_XFER_DATA's fields before its block (id, size), for a sender that keeps the block apart (no copy). */
export const encodeFileXferDataHead = (m: FileXferData): Parsed<Uint8Array> => writeFileXferDataHead(new Writer(12), m).result()

const writeFileXferDataHead = (w: Writer, m: FileXferData): Writer => w.u32(m.id, "id").u64(m.data.length, "size")
