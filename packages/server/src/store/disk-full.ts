import { HeraldError } from '@herald/protocol';

/** SQLite's "database or disk is full" (also what a `max_page_count` cap gives), the OS's, and PostgreSQL's disk_full. */
const DISK_FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', '53100']);

/** Whether `error` (or any error in its `cause` chain) says the disk is full. */
export function isDiskFull(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof HeraldError) return e.code === 'store_unavailable' && (e.details as { reason?: unknown } | undefined)?.reason === 'disk_full';
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && DISK_FULL_CODES.has(code)) return true;
  }
  return false;
}

export function diskFullError(cause: unknown): HeraldError {
  const error = new HeraldError('store_unavailable', 'The store is out of disk space: nothing was written. Retry later.', { reason: 'disk_full' });
  error.cause = cause;
  return error;
}

/**
 * Whether the store could write the last time it tried. Set by the first disk-full failure, cleared by the
 * next write that succeeds (an append, or /readyz's probe write): while set, /readyz answers 503.
 */
export class WriteHealth {
  private fullSince: number | undefined;

  get full(): boolean {
    return this.fullSince !== undefined;
  }

  /** Maps a disk-full failure to `store_unavailable` (reason `disk_full`) and remembers it; anything else is returned as is. */
  failed(error: unknown): unknown {
    if (!isDiskFull(error)) return error;
    this.fullSince ??= Date.now();
    return error instanceof HeraldError ? error : diskFullError(error);
  }

  succeeded(): void {
    this.fullSince = undefined;
  }
}
