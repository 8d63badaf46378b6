// Bounds how long the scripts' rigs wait on a promise: a hung exchange becomes an error naming what was awaited.

/** `p`, or a rejection "timed out: `what`" after `ms`; the timer is cleared either way so it never holds the process. */
export const withTimeout = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    )
  })
