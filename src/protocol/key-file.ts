// The `[vdagent-file-xfer]` GLib key file inside FILE_XFER_START (spec §7 item 8): parse the keys the agent reads
// (name, size, file-xfer-nr, file-xfer-total) and emit the text g_key_file_to_data produces for them.

export const FILE_XFER_GROUP = "vdagent-file-xfer"

export interface FileXferKeys {
  readonly name: string
  readonly size: number
  readonly fileXferNr?: number
  readonly fileXferTotal?: number
}

export type KeyFileResult = { readonly _tag: "Ok"; readonly value: FileXferKeys } | { readonly _tag: "Error"; readonly detail: string }

const fail = (detail: string): KeyFileResult => ({ _tag: "Error", detail })

/** GLib string unescaping: \s \n \t \r \\ ; any other escape is an error in g_key_file_get_string. */
const unescape = (raw: string): string | undefined => {
  let out = ""
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (c !== "\\") {
      out += c
      continue
    }
    const e = raw[++i]
    if (e === "s") out += " "
    else if (e === "n") out += "\n"
    else if (e === "t") out += "\t"
    else if (e === "r") out += "\r"
    else if (e === "\\") out += "\\"
    else return undefined
  }
  return out
}

/** g_key_file_set_string escaping: backslash and control characters always, a space only at the start. */
const escape = (value: string): string =>
  value.replace(/[\\\n\t\r]|^ /g, (c) => (c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\t" ? "\\t" : c === "\r" ? "\\r" : "\\s"))

/** GLib trims with g_ascii_isspace only: a value starting with another space (U+00A0, U+3000…) keeps it. */
const trimAsciiStart = (s: string): string => s.replace(/^[ \t\n\v\f\r]+/, "")
const trimAsciiEnd = (s: string): string => s.replace(/[ \t\n\v\f\r]+$/, "")

const DECIMAL = /^[0-9]+$/
const INTEGER = /^-?[0-9]+$/

/** Parses the key file text (without its NUL). Keys of other groups and unknown keys are ignored, as GLib does. */
export const parseFileXferKeys = (text: string): KeyFileResult => {
  const keys = new Map<string, string>()
  let group: string | undefined
  for (const rawLine of text.split("\n")) {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine
    const trimmed = trimAsciiStart(line)
    if (trimmed === "" || trimmed.startsWith("#")) continue
    if (trimmed.startsWith("[")) {
      if (!trimmed.endsWith("]")) return fail(`malformed group line ${JSON.stringify(line)}`)
      group = trimmed.slice(1, -1)
      continue
    }
    const eq = line.indexOf("=")
    if (eq < 0) return fail(`line ${JSON.stringify(line)} is neither a group, a key nor a comment`)
    if (group === undefined) return fail("key before the first group")
    // Later duplicates override earlier ones, as in GLib.
    if (group === FILE_XFER_GROUP) keys.set(trimAsciiEnd(line.slice(0, eq)), trimAsciiStart(line.slice(eq + 1)))
  }
  const rawName = keys.get("name")
  const rawSize = keys.get("size")
  if (rawName === undefined || rawSize === undefined) return fail(`[${FILE_XFER_GROUP}] lacks name or size`)
  const name = unescape(rawName)
  if (name === undefined) return fail("name holds an invalid escape sequence")
  if (!DECIMAL.test(rawSize) || !Number.isSafeInteger(Number(rawSize))) return fail(`size ${JSON.stringify(rawSize)} is not a safe u64`)
  const optional = (key: string): number | undefined | null => {
    const raw = keys.get(key)
    if (raw === undefined) return undefined
    const n = Number(raw)
    return INTEGER.test(raw) && n >= -0x8000_0000 && n <= 0x7fff_ffff ? n : null
  }
  const fileXferNr = optional("file-xfer-nr")
  const fileXferTotal = optional("file-xfer-total")
  if (fileXferNr === null || fileXferTotal === null) return fail("file-xfer-nr or file-xfer-total is not an int32")
  return {
    _tag: "Ok",
    value: {
      name,
      size: Number(rawSize),
      ...(fileXferNr !== undefined ? { fileXferNr } : {}),
      ...(fileXferTotal !== undefined ? { fileXferTotal } : {}),
    },
  }
}

/** The key file text (without NUL): group line, then one `key=value` line per key. */
export const formatFileXferKeys = (k: FileXferKeys): string =>
  `[${FILE_XFER_GROUP}]\nname=${escape(k.name)}\nsize=${k.size}\n` +
  (k.fileXferNr !== undefined ? `file-xfer-nr=${k.fileXferNr}\n` : "") +
  (k.fileXferTotal !== undefined ? `file-xfer-total=${k.fileXferTotal}\n` : "")
