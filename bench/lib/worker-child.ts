// Runs the local worker harness (raw Miniflare/workerd) in a process of its own for the benchmarks: prints one JSON
// line with its address and key, forwards the Worker's warnings to stderr, and stops when its stdin ends.
import { startWorker } from "../../test/harness/worker.ts"

const worker = await startWorker({
  onLog: (l) => {
    if (l.level === "warn" || l.level === "error") process.stderr.write(`[workerd ${l.level}] ${l.message}\n`)
  },
})
process.stdout.write(`${JSON.stringify({ url: worker.url, wsUrl: worker.wsUrl, signingKey: worker.signingKey })}\n`)
const stop = async (): Promise<void> => {
  await worker.stop()
  process.exit(0)
}
process.stdin.on("end", () => void stop())
process.stdin.resume()
process.on("SIGTERM", () => void stop())
