// JSON log lines on stderr: one object per line, always with the VM id and a cause where there is one; never a token.

export type LogLevel = "debug" | "info" | "warn" | "error"
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>

export interface Logger {
  log(level: LogLevel, event: string, fields?: LogFields): void
}

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 }

/** Writes `{"ts","level","event",...fields}` lines; drops lines below `min`. */
export const jsonLogger = (write: (line: string) => void, min: LogLevel = "info"): Logger => ({
  log(level, event, fields = {}) {
    if (rank[level] < rank[min]) return
    const line: Record<string, unknown> = { ts: new Date().toISOString(), level, event }
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) line[k] = v
    write(`${JSON.stringify(line)}\n`)
  },
})

/** A logger that prefixes every line with fixed fields (the VM id, the component). */
export const withFields = (logger: Logger, fixed: LogFields): Logger => ({
  log(level, event, fields = {}) {
    logger.log(level, event, { ...fixed, ...fields })
  },
})
