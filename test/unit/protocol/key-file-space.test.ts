// Regression (found by the codec property test, seed 415226545): a file name starting with a non-ASCII space (U+00A0,
// U+2003, U+3000…) lost it in our key-file parser, which trimmed all Unicode whitespace where GLib trims ASCII only.
import { expect, it } from "vitest"
import { formatFileXferKeys, parseFileXferKeys } from "../../../src/protocol/key-file.ts"

it("keeps leading non-ASCII spaces of a name, and ASCII ones through their escapes", () => {
  for (const name of ["\u00a0", "\u2003report.pdf", "\u3000", " leading space", "\ttab"]) {
    expect(parseFileXferKeys(formatFileXferKeys({ name, size: 1 }))).toEqual({ _tag: "Ok", value: { name, size: 1 } })
  }
  // Unescaped ASCII whitespace after '=' is not part of the value, as in g_key_file_get_string.
  expect(parseFileXferKeys("[vdagent-file-xfer]\nname= \t x\nsize=0\n")).toEqual({ _tag: "Ok", value: { name: "x", size: 0 } })
})
