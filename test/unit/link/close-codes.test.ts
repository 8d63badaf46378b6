// The link error ⇄ close code mapping is one-to-one, uses the codes DESIGN.md names, and close reasons fit the frame.
import fc from "fast-check"
import { expect, it } from "vitest"
import { LINK_ERROR_CODES } from "../../../src/link/client-codec.ts"
import { closeCodeOf, closeReason, linkErrorOfClose } from "../../../src/link/close-codes.ts"

it("maps every link error to its close code and back", () => {
  expect(Object.fromEntries(LINK_ERROR_CODES.map((c) => [c, closeCodeOf(c)]))).toEqual({
    protocol: 1002,
    policy: 1008,
    "too-big": 1009,
    internal: 1011,
    replaced: 4000,
    "slow-consumer": 4001,
    "going-away": 1001,
    auth: 4401,
  })
  for (const c of LINK_ERROR_CODES) expect(linkErrorOfClose(closeCodeOf(c))).toBe(c)
  expect(linkErrorOfClose(1000)).toBeUndefined()
  expect(linkErrorOfClose(1006)).toBeUndefined()
})

it("cuts close reasons to 123 UTF-8 bytes without splitting a character", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (detail) => {
      const r = closeReason(detail)
      expect(new TextEncoder().encode(r).length).toBeLessThanOrEqual(123)
      expect(r).not.toContain("\uFFFD")
      if (new TextEncoder().encode(detail).length <= 123) expect(r).toBe(detail)
    }),
  )
})
