// The load and soak runs (docs/reliability.md): N VMs on one local workerd (raw Miniflare on the real bundle), each with
// an in-process bridge + agent simulator and an SDK console, exchanging clipboard both ways and pointer moves. Reports
// lost and torn exchanges, workerd memory per session, workerd CPU while every session is idle, and (soak) the memory
// trend under steady load.
import { startWorker, type LocalWorker } from "../worker.ts"
import { cpuMs, rssBytes, workerdPid } from "../proc.ts"
import { VmPair } from "./vm-pair.ts"

const TENANT = "load"

export interface LoadOptions {
  readonly sessions: number
  readonly rounds: number
  /** Clipboard text size per exchange, bytes. */
  readonly textBytes?: number
  /** Sessions set up or driven at once. */
  readonly concurrency?: number
  /** Seconds every session stays idle before idle CPU is measured (and the window it is measured over). */
  readonly idleSeconds?: number
  /** Soak: keep every session busy for this many seconds, sampling workerd memory. */
  readonly soakSeconds?: number
  readonly timeoutMs?: number
  readonly log?: (line: string) => void
}

export interface LoadReport {
  readonly sessions: number
  readonly exchanges: { readonly ok: number; readonly lost: number; readonly torn: number }
  readonly bridgeFaults: { readonly badFrames: number; readonly outOfPosition: number; readonly agentErrors: number }
  readonly problems: ReadonlyArray<string>
  readonly workerd: {
    readonly baseRssBytes: number
    readonly connectedRssBytes: number
    readonly busyRssBytes: number
    readonly idleRssBytes: number
    readonly perSessionBytes: number
    /** workerd CPU while every session was idle, percent of one core. */
    readonly idleCpuPercent: number
    /** workerd CPU during the rounds, percent of one core. */
    readonly busyCpuPercent: number
  }
  /** After the idle period, one more round: sessions woken from idle (hibernation) still work. */
  readonly afterIdle: { readonly ok: number; readonly lost: number; readonly torn: number }
  readonly soak?: {
    readonly seconds: number
    readonly samples: ReadonlyArray<readonly [number, number]>
    /** Least-squares trend of workerd RSS after the warm-up. */
    readonly slopeMiBPerHour: number
    /** Median RSS of the first and of the last third of the steady samples (robust to GC sawtooth). */
    readonly firstThirdMiB: number
    readonly lastThirdMiB: number
    readonly exchanges: number
  }
  readonly seconds: number
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Runs `f` over `items` with at most `n` in flight. */
const pool = async <A>(items: ReadonlyArray<A>, n: number, f: (a: A) => Promise<void>): Promise<void> => {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await f(items[next++]!)
  }))
}

/** Least-squares slope of [seconds, bytes] samples, in MiB per hour. */
const slope = (s: ReadonlyArray<readonly [number, number]>): number => {
  if (s.length < 2) return 0
  const mx = s.reduce((a, [x]) => a + x, 0) / s.length
  const my = s.reduce((a, [, y]) => a + y, 0) / s.length
  const num = s.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0)
  const den = s.reduce((a, [x]) => a + (x - mx) ** 2, 0)
  return den === 0 ? 0 : ((num / den) * 3600) / (1024 * 1024)
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!
}

const totals = (pairs: ReadonlyArray<VmPair>) => ({
  ok: pairs.reduce((n, p) => n + p.out.ok, 0),
  lost: pairs.reduce((n, p) => n + p.out.lost, 0),
  torn: pairs.reduce((n, p) => n + p.out.torn, 0),
})

export const runLoad = async (o: LoadOptions): Promise<LoadReport> => {
  const log = o.log ?? (() => {})
  const t0 = performance.now()
  const conc = o.concurrency ?? 32
  const timeoutMs = o.timeoutMs ?? 60_000
  const worker: LocalWorker = await startWorker()
  const pid = workerdPid()
  try {
    await sleep(1000)
    const baseRss = rssBytes(pid)
    const pairs: VmPair[] = []
    for (let i = 0; i < o.sessions; i++) {
      const vm = `vm-${i}`
      const bridgeToken = await worker.mint({ tenant: TENANT, vm, role: "bridge", ttl: 24 * 3600 })
      pairs.push(new VmPair(vm, { agent: `${worker.wsUrl}/v1/vms/${vm}/agent`, console: `${worker.wsUrl}/v1/vms/${vm}/console` }, bridgeToken, () => worker.mint({ tenant: TENANT, vm, role: "controller", ttl: 24 * 3600 }), timeoutMs))
    }
    await pool(pairs, conc, async (p) => p.start())
    log(`${pairs.length} sessions connected in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    await sleep(2000)
    const connectedRss = rssBytes(pid)

    const busyCpu0 = cpuMs(pid)
    const busyT0 = performance.now()
    for (let r = 0; r < o.rounds; r++) {
      await pool(pairs, conc, (p) => p.round(r, o.textBytes ?? 1024))
      log(`round ${r + 1}/${o.rounds}: ${JSON.stringify(totals(pairs))}`)
    }
    const busyCpuPercent = ((cpuMs(pid) - busyCpu0) / (performance.now() - busyT0)) * 100
    const busyRss = rssBytes(pid)

    let soak: LoadReport["soak"]
    const soakSeconds = o.soakSeconds
    if (soakSeconds !== undefined) {
      const samples: Array<readonly [number, number]> = []
      const start = performance.now()
      const before = totals(pairs).ok
      let r = o.rounds
      const sampler = setInterval(() => samples.push([(performance.now() - start) / 1000, rssBytes(pid)]), 10_000)
      while (performance.now() - start < soakSeconds * 1000) {
        await pool(pairs, conc, (p) => p.round(r, o.textBytes ?? 1024))
        r++
      }
      clearInterval(sampler)
      // The first minute is warm-up (JIT, pools, caches); the trend is taken over the rest.
      const steady = samples.filter(([t]) => t >= Math.min(60, soakSeconds / 4))
      const third = Math.max(1, Math.floor(steady.length / 3))
      soak = {
        seconds: soakSeconds,
        samples,
        slopeMiBPerHour: slope(steady),
        firstThirdMiB: median(steady.slice(0, third).map(([, b]) => b)) / 2 ** 20,
        lastThirdMiB: median(steady.slice(-third).map(([, b]) => b)) / 2 ** 20,
        exchanges: totals(pairs).ok - before,
      }
      log(`soak: ${soak.exchanges} exchanges, memory trend ${soak.slopeMiBPerHour.toFixed(1)} MiB/h`)
    }

    const idle = o.idleSeconds ?? 10
    await sleep(idle * 1000)
    const idleCpu0 = cpuMs(pid)
    const idleT0 = performance.now()
    await sleep(idle * 1000)
    const idleCpuPercent = ((cpuMs(pid) - idleCpu0) / (performance.now() - idleT0)) * 100
    const idleRss = rssBytes(pid)
    log(`idle: workerd CPU ${idleCpuPercent.toFixed(2)} % of a core, RSS ${(idleRss / 2 ** 20).toFixed(0)} MiB`)

    const beforeWake = totals(pairs)
    await pool(pairs, conc, (p) => p.round(o.rounds + 100_000, o.textBytes ?? 1024))
    const afterWake = totals(pairs)
    const afterIdle = { ok: afterWake.ok - beforeWake.ok, lost: afterWake.lost - beforeWake.lost, torn: afterWake.torn - beforeWake.torn }

    const report: LoadReport = {
      sessions: pairs.length,
      exchanges: totals(pairs),
      bridgeFaults: {
        badFrames: pairs.reduce((n, p) => n + p.vm.faults.badFrames, 0),
        outOfPosition: pairs.reduce((n, p) => n + p.vm.faults.outOfPosition, 0),
        agentErrors: pairs.reduce((n, p) => n + p.vm.faults.agentErrors.length, 0),
      },
      problems: pairs.flatMap((p) => [...p.out.problems, ...p.vm.faults.agentErrors.slice(0, 2)]).slice(0, 20),
      workerd: {
        baseRssBytes: baseRss,
        connectedRssBytes: connectedRss,
        busyRssBytes: busyRss,
        idleRssBytes: idleRss,
        perSessionBytes: Math.round((connectedRss - baseRss) / pairs.length),
        idleCpuPercent,
        busyCpuPercent,
      },
      afterIdle,
      ...(soak === undefined ? {} : { soak }),
      seconds: (performance.now() - t0) / 1000,
    }
    await pool(pairs, conc, (p) => p.stop())
    return report
  } finally {
    await worker.stop()
  }
}
