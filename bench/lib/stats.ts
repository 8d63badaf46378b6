// Small statistics and timing helpers shared by the benchmarks: a monotonic clock, percentiles, medians of runs.

/** Monotonic milliseconds with sub-microsecond resolution. */
export const now = (): number => performance.now()

/** The q-quantile (0..1) of `xs` by nearest rank; NaN for no samples. */
export const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  if (xs.length === 0) return Number.NaN
  const sorted = [...xs].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

export const median = (xs: ReadonlyArray<number>): number => quantile(xs, 0.5)

export interface Summary {
  readonly n: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

export const summarize = (xs: ReadonlyArray<number>): Summary => ({
  n: xs.length,
  p50: quantile(xs, 0.5),
  p90: quantile(xs, 0.9),
  p99: quantile(xs, 0.99),
  max: xs.length === 0 ? Number.NaN : Math.max(...xs),
})

/** Rounds to `digits` decimals (figures are printed, not computed on). */
export const round = (x: number, digits = 3): number => {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Bytes per millisecond → MiB/s. */
export const mibps = (bytes: number, ms: number): number => bytes / (1024 * 1024) / (ms / 1000)

/**
 * Runs `ours` and `baseline` alternately `runs` times after `warmup` pairs, so drift in the shared machine's load hits
 * both sides alike; returns every timing (ms) of each side, and the first pair's (`cold`: the first transfer after a
 * start, before the JITs of workerd, the bridge and the SDK have compiled the hot paths).
 */
export const alternate = async (
  ours: () => Promise<number>,
  baseline: () => Promise<number>,
  runs: number,
  warmup = WARMUP,
): Promise<{ ours: number[]; baseline: number[]; cold: { ours: number; baseline: number } }> => {
  const cold = { ours: Number.NaN, baseline: Number.NaN }
  for (let i = 0; i < warmup; i++) {
    const o = await ours()
    const b = await baseline()
    if (i === 0) (cold.ours = o), (cold.baseline = b)
  }
  const a: number[] = []
  const b: number[] = []
  for (let i = 0; i < runs; i++) {
    // Swap the order every run: whichever goes first may find a warmer or colder machine.
    if (i % 2 === 0) {
      a.push(await ours())
      b.push(await baseline())
    } else {
      b.push(await baseline())
      a.push(await ours())
    }
  }
  return { ours: a, baseline: b, cold }
}

/**
 * Pairs run before the timed ones. A 10 MiB transfer through the relay takes 2–3× as long for its first four or so
 * runs after a start as from then on (bench/lib/profile-relay.ts, 16 runs: 180, 189, 101, 186, then 53–103 ms), the
 * time V8 needs to optimise the hot paths of three processes; the figures are the steady state a running relay is in,
 * and the cold first transfer is reported beside them.
 */
export const WARMUP = 5

/** True when long variants were asked for (`BENCH_LONG=1 npm run bench`). */
export const longRuns = (): boolean => process.env.BENCH_LONG === "1"
