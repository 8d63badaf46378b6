// Loader of the golden `.hex` vector format described in test/golden/README.md.
import { readFileSync, readdirSync } from "node:fs"
import { join } from "node:path"
import type { AgentMessage, CodecOptions } from "../../src/protocol/index.ts"

export type Direction = "agent->host" | "host->agent"

export interface Expected {
  readonly port: number
  readonly message: AgentMessage
}

export interface GoldenVector {
  readonly name: string
  readonly source: string
  readonly direction: Direction
  readonly layout: CodecOptions
  readonly expect: ReadonlyArray<Expected>
  readonly bytes: Uint8Array
  /**
   * False when the file has `# encode: none`: the bytes are a sender quirk that no correct encoder produces (the
   * agent's 1-byte CLIPBOARD_RELEASE), so only decoding and framing are checked.
   */
  readonly reencode: boolean
  /** Byte lines without a trailing `# comment` (the format requires none). */
  readonly uncommentedLines: ReadonlyArray<number>
}

export const GOLDEN_DIR = new URL(".", import.meta.url).pathname

/** Turns `{"hex":"..."}` objects (the format's byte fields) back into Uint8Array. */
const revive = (_key: string, value: unknown): unknown => {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value)
    const hex = (value as { hex?: unknown }).hex
    if (keys.length === 1 && typeof hex === "string") return hexBytes(hex)
  }
  return value
}

export const hexBytes = (hex: string): Uint8Array => {
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new Error(`not hex: ${JSON.stringify(hex)}`)
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16))
}

export const parseGolden = (name: string, text: string): GoldenVector => {
  const headers = new Map<string, string[]>()
  const bytes: number[] = []
  const uncommentedLines: number[] = []
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim()
    if (line === "") return
    const header = /^#\s*([a-z]+):\s*(.*)$/.exec(line)
    if (line.startsWith("#")) {
      if (header !== null && bytes.length === 0) headers.set(header[1]!, [...(headers.get(header[1]!) ?? []), header[2]!.trim()])
      return
    }
    const hash = line.indexOf("#")
    if (hash < 0) uncommentedLines.push(i + 1)
    const data = (hash < 0 ? line : line.slice(0, hash)).replace(/[\s|]/g, "")
    for (const b of hexBytes(data)) bytes.push(b)
  })
  const one = (key: string): string => {
    const v = headers.get(key)
    if (v === undefined || v.length !== 1) throw new Error(`${name}: needs exactly one "# ${key}:" line`)
    return v[0]!
  }
  const direction = one("direction")
  if (direction !== "agent->host" && direction !== "host->agent") throw new Error(`${name}: direction must be agent->host or host->agent`)
  const layoutLine = headers.get("layout")
  const layout: CodecOptions = { selection: true, grabSerial: true, detailedErrors: true, ...(layoutLine ? JSON.parse(layoutLine[0]!) : {}) }
  const expect = (headers.get("expect") ?? []).map((e) => JSON.parse(e, revive) as Expected)
  if (expect.length === 0) throw new Error(`${name}: needs at least one "# expect:" line`)
  const reencode = headers.get("encode")?.[0] !== "none"
  return { name, source: one("source"), direction, layout, expect, bytes: Uint8Array.from(bytes), reencode, uncommentedLines }
}

/** Every `.hex` file of the golden directory, sorted by name. */
export const loadGoldenVectors = (dir = GOLDEN_DIR): GoldenVector[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".hex"))
    .sort()
    .map((f) => parseGolden(f, readFileSync(join(dir, f), "utf8")))
