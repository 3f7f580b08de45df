type Handler = (...args: never[]) => void;

/**
 * Calls an app's callback as a DOM event listener is called: an error it throws is reported as uncaught (in its own
 * microtask) and does not reach the caller. Thrown into the client, it would stop what called it halfway: a `state`
 * listener throwing on `connected` left a WebSocket with no channel subscribed, and one thrown out of a WebSocket's
 * message handler (an `onEphemeral`, an `onGap`) left the `ws` package's socket reading nothing more.
 */
export function callSafely<A extends unknown[]>(callback: ((...args: A) => void) | undefined, ...args: A): void {
  if (!callback) return;
  try {
    callback(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

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

  /** Every listener gets the event, whatever the others throw (see callSafely). */
  protected emit<K extends keyof Events>(name: K, ...args: Events[K]): void {
    for (const handler of this.handlers.get(name) ?? []) callSafely(handler as unknown as (...a: Events[K]) => void, ...args);
  }
}
