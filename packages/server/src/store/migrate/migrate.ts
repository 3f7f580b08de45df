import { resolve } from 'node:path';
import { HeraldError } from '@herald/protocol';
import { NODE_LIVE_MS } from '../../cluster/nodes.js';
import { isUnavailable } from '../postgres/database.js';
import { SourceError, SqliteSource, type ChunkLimit, type Counts } from './sqlite-source.js';
import { PostgresTarget, type Marker, type Phase } from './postgres-target.js';
import { redact } from '../../util/redact-url.js';


export interface MigrateOptions {
  /** The SQLite data directory (the one holding herald.db). */
  from: string;
  /** A postgres:// URL. */
  to: string;
  /** Erase a target that holds other data instead of refusing it. */
  force?: boolean;
  /** Rows per transaction at most (default 2000). */
  batch?: number;
  /** Progress lines, for people. */
  progress?: (line: string) => void;
  /** Called after every committed write (tests use it to crash at a chosen point). */
  afterCommit?: () => void;
}

export interface MigrateSummary {
  /** The run continued an interrupted one. */
  resumed: boolean;
  /** The target already held a finished migration of this source: nothing was done. */
  alreadyDone: boolean;
  /** The target held other data and `force` erased it. */
  erased: boolean;
  /** What the target holds now, per kind (equal to the source's once verified). */
  counts: Counts;
  /** Rows this run wrote (upserts of small tables count every row). */
  written: Counts;
  ms: number;
}

/** A failure to report as one line (exit code 1). */
export class MigrateError extends Error {}

const PHASES: Phase[] = ['settings', 'keys', 'sources', 'endpoints', 'channels', 'events', 'idempotency', 'deliveries', 'attempts', 'cursors', 'finish', 'done'];
const CHUNK_BYTES = 8 * 1024 * 1024;
const PROGRESS_EVERY_MS = 1000;

const zero = (): Counts => ({ settings: 0, keys: 0, sources: 0, endpoints: 0, channels: 0, events: 0, idempotency: 0, deliveries: 0, attempts: 0, cursors: 0 });

function describeUsage(usage: Record<string, number>): string {
  return Object.entries(usage)
    .map(([table, n]) => `${n > 1_000_000 ? 'over 1000000' : n} ${table.replace('_', ' ')}`)
    .join(', ');
}

/** Errors people can act on become one line; anything else (a bug) keeps its stack. */
function failure(error: unknown, url: string): unknown {
  if (error instanceof SourceError) return new MigrateError(error.message);
  if (isUnavailable(error)) {
    const cause = error instanceof HeraldError ? ((error.cause as Error | undefined)?.message ?? error.message) : (error as Error).message;
    return new MigrateError(`PostgreSQL at ${redact(url)} is unavailable (${cause}); run the same command again to resume`);
  }
  // A server-side error (a missing database, a refused login, a full disk): what PostgreSQL said.
  if (error instanceof Error && 'severity' in error) return new MigrateError(`PostgreSQL at ${redact(url)}: ${error.message}`);
  return error;
}

/**
 * Copies a SQLite deployment into PostgreSQL, rows as they are: events keep
 * their seqs, ids and times, channels their epochs, heads and trim marks,
 * deliveries their numbers; settings bring the admin key hash, the token
 * secret and the store epoch along. The copy goes in primary-key order, one
 * transaction per chunk, each moving a progress marker kept in the target's
 * settings, so a run that is killed continues where it stopped.
 */
export async function migrateToPostgres(options: MigrateOptions): Promise<MigrateSummary> {
  const started = Date.now();
  const say = options.progress ?? (() => {});
  const limit: ChunkLimit = { rows: options.batch ?? 2000, bytes: CHUNK_BYTES };
  let source: SqliteSource | undefined;
  let target: PostgresTarget | undefined;
  try {
    source = SqliteSource.open(options.from);
    const epoch = source.epoch();
    const running = source.liveNodes(Date.now() - NODE_LIVE_MS);
    if (running.length > 0) {
      throw new MigrateError(`a Herald server is running on ${options.from} (node ${running.join(', ')}); stop it first, so nothing changes during the copy (if it just crashed, try again in a few seconds)`);
    }
    target = await PostgresTarget.open(options.to);
    const targetNodes = await target.liveNodes(Date.now() - NODE_LIVE_MS);
    if (targetNodes.length > 0) {
      throw new MigrateError(`Herald nodes are running on the target (${targetNodes.join(', ')}); stop them before migrating into it`);
    }

    let marker = await target.marker();
    const usage = await target.usage();
    const used = Object.keys(usage).length > 0;
    let erased = false;
    let resumed = false;
    if (options.force && (used || marker)) {
      say(`--force: erasing the target${used ? ` (${describeUsage(usage)})` : ''}`);
      await target.erase();
      marker = undefined;
      erased = true;
    } else if (marker?.source === epoch && marker.phase === 'done') {
      say(`the target already holds a finished migration of this deployment (from ${marker.from}); nothing to do (--force copies it again)`);
      return { resumed: false, alreadyDone: true, erased: false, counts: await target.counts(), written: zero(), ms: Date.now() - started };
    } else if (marker?.source === epoch) {
      say(`resuming an interrupted migration of this deployment (at ${marker.phase})`);
      resumed = true;
    } else if (used) {
      const why = marker ? `a migration of another deployment (from ${marker.from})` : 'data that is not from a migration of this deployment';
      throw new MigrateError(
        `the target is not empty: it holds ${describeUsage(usage)}, ${why}. Refusing to mix deployments; point --to at an empty database, or add --force to erase it first`,
      );
    }
    if (!resumed) {
      marker = { source: epoch, from: resolve(options.from), startedAt: Date.now(), phase: 'settings' };
      await target.setMarker(marker);
    }
    const written = await copy(source, target, marker!, limit, say, options.afterCommit ?? (() => {}));
    return { resumed, alreadyDone: false, erased, counts: await target.counts(), written, ms: Date.now() - started };
  } catch (error) {
    throw failure(error, options.to);
  } finally {
    source?.close();
    await target?.close();
  }
}

async function copy(
  source: SqliteSource,
  target: PostgresTarget,
  start: Marker,
  limit: ChunkLimit,
  say: (line: string) => void,
  committed: () => void,
): Promise<Counts> {
  const written = zero();
  const totals = source.counts();
  let marker = start;
  const at = (phase: Phase, position?: unknown): Marker => {
    marker = { ...marker, phase, position };
    return marker;
  };
  const next = (phase: Phase): Phase => PHASES[PHASES.indexOf(phase) + 1]!;
  /** Writes the marker for the next phase on its own, after a chunked phase. */
  const advance = async (phase: Phase) => {
    await target.setMarker(at(next(phase)));
    committed();
  };

  /** A chunked phase: reads after the marker's position, writes chunk by chunk, reports about once a second. */
  const chunked = async <R, P>(
    phase: Phase & keyof Counts,
    initial: P,
    read: (after: P) => R[],
    positionOf: (last: R) => P,
    write: (rows: R[], marker: Marker) => Promise<number>,
  ) => {
    let after = (marker.phase === phase && marker.position !== undefined ? marker.position : initial) as P;
    let done = 0;
    let lastReport = Date.now();
    const resumed = marker.phase === phase && marker.position !== undefined;
    say(`${phase}: ${totals[phase]} to copy${resumed ? ', continuing where the last run stopped' : ''}`);
    for (;;) {
      const rows = read(after);
      if (rows.length === 0) break;
      after = positionOf(rows.at(-1)!);
      written[phase] += await write(rows, at(phase, after));
      committed();
      done += rows.length;
      if (Date.now() - lastReport >= PROGRESS_EVERY_MS) {
        lastReport = Date.now();
        say(`${phase}: ${done} / ${totals[phase]}${resumed ? ' (this run)' : ''}…`);
      }
    }
    await advance(phase);
  };

  while (marker.phase !== 'done') {
    const phase = marker.phase;
    switch (phase) {
      case 'settings':
        written.settings += await target.writeSettings(source.settings(), at(next(phase)));
        committed();
        break;
      case 'keys':
        written.keys += await target.writeKeys(source.keys(), at(next(phase)));
        committed();
        break;
      case 'sources':
        written.sources += await target.writeSources(source.sources(), at(next(phase)));
        committed();
        break;
      case 'endpoints':
        written.endpoints += await target.writeEndpoints(source.endpoints(), at(next(phase)));
        committed();
        break;
      case 'channels':
        await chunked(phase, 0, (after) => source.channels(after, limit), (r) => r.cid, (rows, m) => target.writeChannels(rows, m));
        break;
      case 'events': {
        const cid = await channelMap(source, target);
        await chunked(
          phase,
          [0, 0] as [number, number],
          (after) => source.events(after, limit),
          (r) => [r.cid, r.seq] as [number, number],
          (rows, m) => target.writeEvents(rows, cid, m),
        );
        break;
      }
      case 'idempotency': {
        const cid = await channelMap(source, target);
        await chunked(phase, '', (after) => source.idempotency(after, limit), (r) => r.key, (rows, m) => target.writeIdempotency(rows, cid, m));
        break;
      }
      case 'deliveries':
        await chunked(phase, 0, (after) => source.deliveries(after, limit), (r) => r.n, (rows, m) => target.writeDeliveries(rows, m));
        break;
      case 'attempts':
        await chunked(phase, 0, (after) => source.attempts(after, limit), (r) => r.n, (rows, m) => target.writeAttempts(rows, m));
        break;
      case 'cursors':
        written.cursors += await target.writeCursors(source.cursors(), at(next(phase)));
        committed();
        break;
      case 'finish': {
        say('verifying…');
        await verify(source, target, totals);
        marker = { ...marker, phase: 'done', position: undefined, finishedAt: Date.now() };
        await target.finishSequences(marker);
        committed();
        break;
      }
    }
  }
  return written;
}

/** Maps a source channel number to the target's (the channels phase has copied them all by then). */
async function channelMap(source: SqliteSource, target: PostgresTarget): Promise<(sourceCid: number) => number> {
  const names = source.channelNames();
  const ids = await target.channelIds();
  return (sourceCid: number) => {
    const id = ids.get(names.get(sourceCid) ?? '');
    if (id === undefined) throw new MigrateError(`channel ${names.get(sourceCid) ?? `#${sourceCid}`} is missing from the target`);
    return id;
  };
}

/** The target must hold exactly what the source does: the same counts, and per channel the same epoch, head, trim mark and events. */
async function verify(source: SqliteSource, target: PostgresTarget, expected: Counts): Promise<void> {
  const problems: string[] = [];
  const actual = await target.counts();
  for (const kind of Object.keys(expected) as Array<keyof Counts>) {
    if (actual[kind] !== expected[kind]) problems.push(`${kind}: ${expected[kind]} in the source, ${actual[kind]} in the target`);
  }
  const want = source.channelSummaries();
  const got = await target.channelSummaries();
  for (const [name, s] of want) {
    const t = got.get(name);
    if (!t) problems.push(`channel ${name}: missing`);
    else if (t.epoch !== s.epoch || t.head !== s.head || t.trimmed !== s.trimmed || t.events !== s.events) {
      problems.push(`channel ${name}: source ${JSON.stringify(s)}, target ${JSON.stringify(t)}`);
    }
    if (problems.length >= 10) break;
  }
  if (problems.length > 0) {
    throw new MigrateError(`verification failed, the target differs from the source:\n  ${problems.join('\n  ')}\nRun again with --force to copy from scratch.`);
  }
}
