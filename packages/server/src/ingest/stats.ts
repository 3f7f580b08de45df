/** How many of a source's latest requests are kept for `GET /v1/sources/{name}/ingests`. */
export const RECENT_INGESTS = 50;

/** One request to `/v1/ingest/{source}`, as the console lists it. Never the body, never a secret. */
export interface IngestRecord {
  at: string;
  outcome: 'accepted' | 'duplicate' | 'refused';
  /** The HTTP status Herald answered. */
  status: number;
  /** For a refusal: the error code (`webhook_signature_invalid`, `payload_too_large`, …) and its message. */
  reason?: string;
  message?: string;
  /** For an accepted or duplicate request: the event it appended (or had appended before). */
  event?: { id: string; seq: number };
  bytes: number;
}

interface SourceCounters {
  accepted: number;
  duplicates: number;
  refused: number;
}

/** Per-source counters and the latest requests, in memory: they reset on restart, as process metrics do. */
export class IngestStats {
  private readonly bySource = new Map<string, SourceCounters>();
  private readonly recentBySource = new Map<string, IngestRecord[]>();

  of(source: string): SourceCounters {
    let entry = this.bySource.get(source);
    if (!entry) {
      entry = { accepted: 0, duplicates: 0, refused: 0 };
      this.bySource.set(source, entry);
    }
    return entry;
  }

  /**
   * Counts the request in the source's counters and keeps it among its latest RECENT_INGESTS, dropping the oldest:
   * one call for both, so every request listed is counted (a refused body over the limit, or one that was not JSON,
   * once went into the list and not the count).
   */
  record(source: string, record: IngestRecord): void {
    const counters = this.of(source);
    if (record.outcome === 'accepted') counters.accepted += 1;
    else if (record.outcome === 'duplicate') counters.duplicates += 1;
    else counters.refused += 1;
    let list = this.recentBySource.get(source);
    if (!list) this.recentBySource.set(source, (list = []));
    list.push(record);
    if (list.length > RECENT_INGESTS) list.shift();
  }

  /** The latest requests, newest first. */
  recent(source: string): IngestRecord[] {
    return [...(this.recentBySource.get(source) ?? [])].reverse();
  }

  forget(source: string): void {
    this.bySource.delete(source);
    this.recentBySource.delete(source);
  }
}
