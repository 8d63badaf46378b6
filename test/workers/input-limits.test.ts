// Size limits on inputs the relay reads whole (docs/security.md): a policy body is refused once it passes 4 KiB,
// whether it declares its length or streams it, and is never buffered whole first.
import { SELF } from "cloudflare:test"
import { expect, it } from "vitest"
import { mint, ORIGIN } from "./helpers.ts"

it("refuses a streamed (no Content-Length) policy body of 16 MiB with 413 after reading a few KiB of it", async () => {
  const token = await mint({ tenant: "lim", vm: "vm-body", role: "operator" })
  let pulled = 0
  const chunk = new TextEncoder().encode(`{"copyPaste":false${" ".repeat(65_536)}`)
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled += chunk.length
      if (pulled > 16 * 1024 * 1024) c.close()
      else c.enqueue(chunk)
    },
  })
  const res = await SELF.fetch(`${ORIGIN}/v1/vms/vm-body/policy`, { method: "PUT", headers: { Authorization: `Bearer ${token}` }, body, duplex: "half" } as RequestInit)
  expect(res.status).toBe(413)
  await res.text()
  expect(pulled).toBeLessThan(1024 * 1024)
})
