/** Slices of a rota: each tick visits one, so a tick does a sixteenth of a period's work. */
const SLICES = 16;

/**
 * A set whose members are each visited once per period, one slice of them per tick rather than all in one tick:
 * pinging 19,000 WebSockets at once held the event loop for about 200 ms, and the events published meanwhile
 * waited. Its timer does not keep the process alive.
 */
export class Rota<T> implements Iterable<T> {
  private readonly slices = Array.from({ length: SLICES }, () => new Set<T>());
  /** The slice the next tick visits. */
  private turn = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(periodMs: number, visit: (member: T) => void) {
    this.timer = setInterval(() => {
      const slice = this.slices[this.turn]!;
      this.turn = (this.turn + 1) % SLICES;
      for (const member of slice) visit(member);
    }, periodMs / SLICES);
    this.timer.unref();
  }

  get size(): number {
    let size = 0;
    for (const slice of this.slices) size += slice.size;
    return size;
  }

  /** Adds `member` to the smallest slice, so slices stay even however connections come and go. */
  add(member: T): void {
    if (this.has(member)) return;
    let smallest = this.slices[0]!;
    for (const slice of this.slices) if (slice.size < smallest.size) smallest = slice;
    smallest.add(member);
  }

  /** Removes `member` from whichever slice holds it; false when none does. */
  delete(member: T): boolean {
    return this.slices.some((slice) => slice.delete(member));
  }

  has(member: T): boolean {
    return this.slices.some((slice) => slice.has(member));
  }

  *[Symbol.iterator](): Iterator<T> {
    for (const slice of this.slices) yield* slice;
  }

  /** Stops the visits; the members stay. */
  stop(): void {
    clearInterval(this.timer);
  }
}
