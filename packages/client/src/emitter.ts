type Handler = (...args: never[]) => void;

/** A minimal typed event emitter that works the same in browsers and Node. */
export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly handlers = new Map<keyof Events, Set<Handler>>();

  on<K extends keyof Events>(name: K, handler: (...args: Events[K]) => void): () => void {
    let set = this.handlers.get(name);
    if (!set) {
      set = new Set();
      this.handlers.set(name, set);
    }
    const stored = handler as unknown as Handler;
    set.add(stored);
    return () => set.delete(stored);
  }

  protected emit<K extends keyof Events>(name: K, ...args: Events[K]): void {
    for (const handler of this.handlers.get(name) ?? []) (handler as unknown as (...a: Events[K]) => void)(...args);
  }
}
