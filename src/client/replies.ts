// MONITORS_CONFIG requests waiting for the agent's REPLY: the agent answers in order, so the oldest waiting request
// takes each reply; one that timed out still takes its (late) reply, so later ones are not answered out of turn.
import { ClientError } from "./errors.ts"

interface Waiting {
  done: boolean
  readonly settle: (err?: ClientError) => void
}

export class ReplyQueue {
  private readonly waiting: Waiting[] = []

  /** A request about to be sent; `sent` fails it at once if sending fails. */
  expect(timeoutMs: number, what: string): { readonly reply: Promise<void>; readonly sendFailed: (err: ClientError) => void } {
    let entry!: Waiting
    const reply = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => entry.settle(new ClientError("timeout", `the agent did not reply to the ${what}`)), timeoutMs)
      entry = {
        done: false,
        settle: (err) => {
          if (entry.done) return
          entry.done = true
          clearTimeout(timer)
          if (err === undefined) resolve()
          else reject(err)
        },
      }
    })
    this.waiting.push(entry)
    return {
      reply,
      sendFailed: (err) => {
        const at = this.waiting.indexOf(entry)
        if (at !== -1) this.waiting.splice(at, 1)
        entry.settle(err)
      },
    }
  }

  /** The agent's REPLY: success settles the oldest request, an error fails it with `err`. */
  answer(err?: ClientError): void {
    this.waiting.shift()?.settle(err)
  }

  failAll(err: ClientError): void {
    for (const w of this.waiting.splice(0)) w.settle(err)
  }
}
