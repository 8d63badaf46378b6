// The fuzz loop shared by every target: structure-aware generation, havoc mutation of corpus entries (seeded with valid
// inputs), a corpus that keeps an input only when it reaches a new outcome feature, crash and oracle-failure capture,
// and peak memory sampling. Deterministic for a given seed (time only decides when a budget stops the run).
import { havoc } from "./mutate.ts"
import { Rng } from "./rng.ts"

/** An oracle said no: the target ran but broke an invariant (a crash is any other throw). */
export class FuzzFailure extends Error {
  override readonly name = "FuzzFailure"
}

export const check = (ok: boolean, what: string): void => {
  if (!ok) throw new FuzzFailure(what)
}

/** Outcome features of one run (decoder results, event edges); new ones keep the input in the corpus. */
export class Features {
  readonly items: string[] = []
  private prev = "^"

  add(feature: string): void {
    this.items.push(feature)
  }

  /** An edge from the previous event to this one: a cheap path signature over the decoder's observable events. */
  edge(event: string): void {
    this.items.push(`${this.prev}>${event}`)
    this.prev = event
  }

  /** A count, bucketed as AFL buckets hit counts (1, 2, 3, 4-7, 8-15, ...). */
  count(name: string, n: number): void {
    this.items.push(`${name}#${n < 4 ? n : 1 << (31 - Math.clz32(n))}`)
  }
}

export interface FuzzTarget {
  readonly name: string
  readonly description: string
  /** Valid inputs: golden vectors, encoded frames, minted tokens. */
  seeds(): Uint8Array[]
  /** A fresh structure-aware input. */
  generate(rng: Rng): Uint8Array
  /** Structure-aware mutation (the engine also applies byte havoc). */
  mutate?(rng: Rng, input: Uint8Array): Uint8Array
  /** Runs one input; throws FuzzFailure when an invariant breaks. */
  run(input: Uint8Array, f: Features): void | Promise<void>
  /** Inputs are clamped to this many bytes. */
  readonly maxInputBytes: number
  /** The source files (prefixes) this target exercises, for the coverage report. */
  readonly covers: ReadonlyArray<string>
}

export interface Finding {
  readonly kind: "crash" | "oracle"
  readonly message: string
  readonly input: Uint8Array
  readonly index: number
}

export interface FuzzReport {
  readonly target: string
  readonly seed: number
  readonly inputs: number
  readonly crashes: number
  readonly oracleFailures: number
  readonly findings: ReadonlyArray<Finding>
  readonly features: number
  readonly corpus: ReadonlyArray<Uint8Array>
  readonly ms: number
  readonly peakHeapBytes: number
  readonly peakRssBytes: number
  readonly startHeapBytes: number
  /** The most frequent features (outcome histogram), for the report. */
  readonly top: ReadonlyArray<readonly [string, number]>
  /** Every feature reached, with its hit count. */
  readonly seen: ReadonlyMap<string, number>
}

export interface FuzzOptions {
  readonly inputs: number
  readonly seed: number
  /** Stop early after this many milliseconds (the count reached is reported). */
  readonly maxMs?: number
  /** Keep at most this many corpus entries. */
  readonly maxCorpus?: number
  /** Extra starting corpus (e.g. a saved corpus directory). */
  readonly corpus?: ReadonlyArray<Uint8Array>
  /** Called every `progressEvery` inputs. */
  readonly onProgress?: (done: number, features: number, corpus: number) => void
  readonly progressEvery?: number
  /** Distinct findings kept (by kind + first line). */
  readonly maxFindings?: number
}

const MEMORY_SAMPLE_EVERY = 2048

export const runFuzz = async (target: FuzzTarget, o: FuzzOptions): Promise<FuzzReport> => {
  const rng = new Rng(o.seed)
  const seen = new Map<string, number>()
  const corpus: Uint8Array[] = []
  const findings: Finding[] = []
  const distinct = new Set<string>()
  const maxCorpus = o.maxCorpus ?? 4096
  let crashes = 0
  let oracleFailures = 0
  const startHeap = process.memoryUsage().heapUsed
  let peakHeap = startHeap
  let peakRss = process.memoryUsage.rss()
  const t0 = performance.now()

  const keep = (input: Uint8Array, f: Features): void => {
    let fresh = false
    for (const x of f.items) {
      const n = seen.get(x)
      if (n === undefined) fresh = true
      seen.set(x, (n ?? 0) + 1)
    }
    if (!fresh) return
    if (corpus.length < maxCorpus) corpus.push(input.slice())
    else corpus[rng.int(corpus.length)] = input.slice()
  }

  const failed = (error: unknown, input: Uint8Array, index: number, f: Features): void => {
    const oracle = error instanceof FuzzFailure
    if (oracle) oracleFailures++
    else crashes++
    const message = error instanceof Error ? `${error.name}: ${error.message}\n${oracle ? "" : (error.stack ?? "")}` : String(error)
    const key = `${oracle ? "oracle" : "crash"}:${message.split("\n")[0]!.replace(/\d+/g, "N")}`
    if (!distinct.has(key) && findings.length < (o.maxFindings ?? 20)) {
      distinct.add(key)
      findings.push({ kind: oracle ? "oracle" : "crash", message, input: input.slice(), index })
    }
    f.add(key)
  }

  // Synchronous targets never pay for a promise; only the token target is async (WebCrypto).
  const execute = (input: Uint8Array, index: number): Promise<void> | undefined => {
    const f = new Features()
    let r: void | Promise<void>
    try {
      r = target.run(input, f)
    } catch (error) {
      failed(error, input, index, f)
      keep(input, f)
      return undefined
    }
    if (r instanceof Promise) {
      return r.then(
        () => keep(input, f),
        (error: unknown) => {
          failed(error, input, index, f)
          keep(input, f)
        },
      )
    }
    keep(input, f)
    return undefined
  }

  let done = 0
  const initial = [...target.seeds(), ...(o.corpus ?? [])]
  for (const s of initial) {
    if (done >= o.inputs) break
    const p = execute(s.length > target.maxInputBytes ? s.subarray(0, target.maxInputBytes) : s, done++)
    if (p !== undefined) await p
  }
  while (done < o.inputs) {
    let input: Uint8Array
    const r = rng.u32() % 16
    if (corpus.length === 0 || r < 3) input = target.generate(rng)
    else {
      const parent = corpus[rng.int(corpus.length)]!
      const other = corpus[rng.int(corpus.length)]
      input = target.mutate !== undefined && r < 8 ? target.mutate(rng, parent) : havoc(rng, parent, other, target.maxInputBytes)
    }
    if (input.length > target.maxInputBytes) input = input.subarray(0, target.maxInputBytes)
    const p = execute(input, done++)
    if (p !== undefined) await p
    if (done % MEMORY_SAMPLE_EVERY === 0) {
      const m = process.memoryUsage()
      if (m.heapUsed > peakHeap) peakHeap = m.heapUsed
      if (m.rss > peakRss) peakRss = m.rss
      if (o.maxMs !== undefined && performance.now() - t0 > o.maxMs) break
    }
    if (o.onProgress !== undefined && done % (o.progressEvery ?? 100_000) === 0) o.onProgress(done, seen.size, corpus.length)
  }
  const m = process.memoryUsage()
  peakHeap = Math.max(peakHeap, m.heapUsed)
  peakRss = Math.max(peakRss, m.rss)
  const top = [...seen].sort((a, b) => b[1] - a[1]).slice(0, 12)
  return {
    target: target.name,
    seed: o.seed,
    inputs: done,
    crashes,
    oracleFailures,
    findings,
    features: seen.size,
    corpus,
    ms: performance.now() - t0,
    peakHeapBytes: peakHeap,
    peakRssBytes: peakRss,
    startHeapBytes: startHeap,
    top,
    seen,
  }
}
