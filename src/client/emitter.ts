// A small typed event emitter (browser and Node alike): `on` returns its own unsubscribe, listeners never break the SDK.

export type Listener<A> = (event: A) => void

export class Emitter<Events extends { readonly [K in keyof Events]: unknown }> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>()

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event)
    if (set === undefined) this.listeners.set(event, (set = new Set()))
    set.add(listener as Listener<never>)
    return () => this.off(event, listener)
  }

  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (e) => {
      off()
      listener(e)
    })
    return off
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>)
  }

  /** Resolves with the next event of this kind. */
  next<K extends keyof Events>(event: K): Promise<Events[K]> {
    return new Promise((resolve) => this.once(event, resolve))
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event)
    if (set === undefined) return
    for (const listener of [...set]) {
      // A throwing listener is the application's bug; it must not corrupt the session's state machine.
      try {
        ;(listener as Listener<Events[K]>)(value)
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }
}
