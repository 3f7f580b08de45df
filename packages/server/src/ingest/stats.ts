/** Per-source counters, in memory: they reset on restart, as process metrics do. */
export class IngestStats {
  private readonly bySource = new Map<string, { accepted: number; duplicates: number; refused: number }>();

  of(source: string): { accepted: number; duplicates: number; refused: number } {
    let entry = this.bySource.get(source);
    if (!entry) {
      entry = { accepted: 0, duplicates: 0, refused: 0 };
      this.bySource.set(source, entry);
    }
    return entry;
  }

  forget(source: string): void {
    this.bySource.delete(source);
  }
}
