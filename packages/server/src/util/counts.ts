/**
 * How many holds each key has: a key is present while something holds it and leaves at its last release, so `has`
 * answers whether anything holds it. For pins and owed work counted per channel or endpoint.
 */
export class Counts<K> {
  private readonly counts = new Map<K, number>();

  add(key: K): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Releases one hold on `key` (none held: nothing happens) and returns how many are left. */
  release(key: K): number {
    const left = (this.counts.get(key) ?? 1) - 1;
    if (left > 0) this.counts.set(key, left);
    else this.counts.delete(key);
    return left;
  }

  has(key: K): boolean {
    return this.counts.has(key);
  }

  /** How many holds `key` has (0 when none). */
  of(key: K): number {
    return this.counts.get(key) ?? 0;
  }

  get size(): number {
    return this.counts.size;
  }
}
