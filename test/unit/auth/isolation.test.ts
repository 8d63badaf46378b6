// src/auth is the token library operators embed in their control plane: it imports nothing of this repository outside
// itself (only its own modules and Node built-ins, the latter in the CLIs only).
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { expect, it } from "vitest"

const DIR = join(import.meta.dirname, "../../../src/auth")

it("src/auth imports only its own modules (and node: built-ins)", async () => {
  const outside: string[] = []
  for (const file of await readdir(DIR)) {
    const text = await readFile(join(DIR, file), "utf8")
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^"']*?from\s+["']([^"']+)["']/gm)) {
      if (!m[1]!.startsWith("./") && !m[1]!.startsWith("node:")) outside.push(`${file}: ${m[1]}`)
      if (m[1]!.startsWith("./") && m[1]!.includes("/..")) outside.push(`${file}: ${m[1]}`)
    }
  }
  expect(outside).toEqual([])
})
