import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import type { EventStore, SchemaUpgrade, Storage } from '../types.js';
import { migrate } from './schema.js';
import { SqliteEventStore } from './event-store.js';
import { SqliteKeyStore, SqliteSettingsStore } from './key-store.js';
import { SqliteSourceStore } from './source-store.js';
import { SqliteDeliveryStore } from './delivery-store.js';
import { SqliteClusterStore } from './cluster-store.js';
import { WalSync } from './wal-sync.js';
import { Checkpointer, type CheckpointFailureListener } from './checkpointer.js';
import { ThreadedEventStore } from './event-thread/threaded-event-store.js';
import { countCheckpointFailure, recordCommit } from '../../metrics/index.js';
import { StartupError } from '../../startup-error.js';

export interface SqliteOptions {
  /** A directory; the database is `herald.db` inside it. `:memory:` keeps nothing. */
  dataDir: string;
  synchronous?: 'full' | 'normal';
  /** Channel entries kept in memory (default 10,000); see SqliteEventStore. */
  channelCache?: number | undefined;
  /** WAL syncs run at once (default 1); see WalSync. */
  syncsInFlight?: number | undefined;
  /** Told of each failed background checkpoint; see Checkpointer. */
  onCheckpointFailure?: CheckpointFailureListener | undefined;
  /** Runs the event store on a thread of its own (a database on disk only); see ThreadedEventStore. */
  appendThread?: boolean | undefined;
  /** Told if that thread fails or ends: the event store then refuses everything until a restart. */
  onAppendThreadFailure?: ((error: Error) => void) | undefined;
}

/** Each failed background checkpoint counted in `herald_store_checkpoint_failures_total`, then told to `listener`. */
export function countedCheckpointFailures(listener?: CheckpointFailureListener): CheckpointFailureListener {
  return (error, givenUp) => {
    countCheckpointFailure();
    listener?.(error, givenUp);
  };
}

/** Databases up to this size get a full `PRAGMA quick_check` at start-up (well under a second per 100 MiB); bigger ones a lighter read. */
const QUICK_CHECK_MAX_BYTES = 512 * 1024 * 1024;

/**
 * Reads the database before the server listens, so a damaged file stops the start with a message instead of
 * failing every request after it: the whole file for a database of ordinary size, else the schema and the
 * first and last row of every table.
 */
function verifyReadable(db: BetterSqlite3.Database, file: string): void {
  const size = file === ':memory:' ? 0 : statSync(file).size;
  if (size <= QUICK_CHECK_MAX_BYTES) {
    const problems = db.pragma('quick_check(3)', { simple: false }) as Array<{ quick_check: string }>;
    if (problems.length !== 1 || problems[0]!.quick_check !== 'ok') {
      // quick_check's report spans lines ("*** in database main ***" first): keep the first real finding, on one line.
      const finding = problems.flatMap((p) => p.quick_check.split('\n')).map((l) => l.trim()).find((l) => l && !l.startsWith('***'));
      throw Object.assign(new Error(`database disk image is malformed: ${finding ?? 'quick_check failed'}`), { code: 'SQLITE_CORRUPT' });
    }
    return;
  }
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const tables = db
    .prepare("SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'")
    .all() as Array<{ name: string; wr: number }>;
  for (const { name, wr } of tables) {
    // A WITHOUT ROWID table has no rowid: its rows are in primary key order.
    const key = wr
      ? (db.prepare('SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk').pluck().all(name) as string[]).map(quote)
      : ['rowid'];
    db.prepare(`SELECT * FROM ${quote(name)} ORDER BY ${key.join(', ')} LIMIT 1`).all();
    db.prepare(`SELECT * FROM ${quote(name)} ORDER BY ${key.map((k) => `${k} DESC`).join(', ')} LIMIT 1`).all();
  }
}

function startupError(file: string, error: unknown): StartupError {
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message;
  const damaged = code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || /malformed|not a database/i.test(message);
  const what = damaged
    ? `${file} is damaged (${message}). Restore it from a backup, or move it away to start with an empty store.`
    : `cannot open the SQLite store ${file}: ${message}`;
  const wrapped = new StartupError(what);
  wrapped.cause = error;
  return wrapped;
}

/**
 * The database holds the token secret, the sources' and endpoints' signing secrets and every event, so it is the
 * server user's alone. A directory Herald creates is 0700 and a database 0600 (SQLite gives its `-wal` and `-shm` the
 * database's mode), whatever the umask; a database that group or others could read (one made before this check) loses
 * those permissions at start. A directory that already exists is left as it is: its files are what is protected.
 */
function makePrivate(dataDir: string, file: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    if (!existsSync(path)) continue;
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) chmodSync(path, mode & 0o700);
  }
}

export async function openSqliteStorage(options: SqliteOptions): Promise<Storage> {
  let file = ':memory:';
  if (options.dataDir !== ':memory:') {
    file = join(options.dataDir, 'herald.db');
    try {
      makePrivate(options.dataDir, file);
    } catch (error) {
      throw startupError(file, error);
    }
  }
  let db: BetterSqlite3.Database;
  try {
    db = new BetterSqlite3(file);
  } catch (error) {
    throw startupError(file, error);
  }
  let deliveryDb: BetterSqlite3.Database | undefined;
  let upgraded: SchemaUpgrade | undefined;
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = OFF');
    verifyReadable(db, file);
    upgraded = migrate(db);
    // Delivery bookkeeping may skip fsync: see SqliteDeliveryStore for why that is safe. In memory there is one database only.
    deliveryDb = file === ':memory:' ? db : new BetterSqlite3(file);
    if (deliveryDb !== db) {
      deliveryDb.pragma('busy_timeout = 5000');
      deliveryDb.pragma('synchronous = NORMAL');
    }
  } catch (error) {
    deliveryDb?.close();
    db.close();
    throw startupError(file, error);
  }
  const settings = new SqliteSettingsStore(db);
  // One epoch per database: if the file is lost, every channel's history is lost with it.
  const epoch = await settings.setIfAbsent('epoch', randomBytes(8).toString('hex'));
  const checkpointFailures = countedCheckpointFailures(options.onCheckpointFailure);
  const onCommit = (writes: number, seconds: number) => recordCommit('sqlite', writes, seconds);
  const wantSync = file !== ':memory:' && options.synchronous !== 'normal';
  if (options.appendThread && file !== ':memory:') {
    // The same store, with the same WAL sync and checkpoints, on a thread and a connection of its own.
    let events: ThreadedEventStore;
    try {
      events = await ThreadedEventStore.start({
        file,
        epoch,
        channelCache: options.channelCache,
        syncsInFlight: options.syncsInFlight,
        walSync: wantSync,
        onCommit,
        onCheckpointFailure: checkpointFailures,
        onThreadFailure: options.onAppendThreadFailure,
      });
    } catch (error) {
      deliveryDb.close();
      db.close();
      throw startupError(file, error);
    }
    return storageOf(db, deliveryDb, settings, events, upgraded, () => events.close());
  }
  // Appends get a connection of their own that never syncs inside COMMIT: WalSync syncs the WAL off the event loop
  // and appends are answered after it. Keys, settings, sources and endpoints stay on the FULL connection.
  let appendDb = db;
  let walSync: WalSync | undefined;
  if (wantSync) {
    try {
      appendDb = new BetterSqlite3(file);
      appendDb.pragma('busy_timeout = 5000');
      appendDb.pragma('synchronous = NORMAL');
      walSync = new WalSync(`${file}-wal`, options.syncsInFlight);
    } catch (error) {
      if (appendDb !== db) appendDb.close();
      deliveryDb.close();
      db.close();
      throw startupError(file, error);
    }
  }
  const checkpointer = file === ':memory:' ? undefined : new Checkpointer(file, checkpointFailures);
  const events = new SqliteEventStore(appendDb, epoch, {
    maxCachedChannels: options.channelCache,
    durability: walSync,
    checkpoints: checkpointer,
    onCommit,
  });
  return storageOf(db, deliveryDb, settings, events, upgraded, async () => {
    await events.close();
    await checkpointer?.close();
    walSync?.close();
    if (appendDb.open) appendDb.close();
  });
}

/** The stores over the main connections, around an event store that `closeEvents` closes first. */
function storageOf(
  db: BetterSqlite3.Database,
  deliveryDb: BetterSqlite3.Database,
  settings: SqliteSettingsStore,
  events: EventStore,
  upgraded: SchemaUpgrade | undefined,
  closeEvents: () => Promise<void>,
): Storage {
  const deliveries = new SqliteDeliveryStore(db, deliveryDb);
  return {
    upgraded,
    events,
    keys: new SqliteKeyStore(db),
    sources: new SqliteSourceStore(db),
    deliveries,
    settings,
    // Leases are renewed every few seconds and worthless after a restart: no fsync for them (the NORMAL connection).
    cluster: new SqliteClusterStore(deliveryDb),
    async close() {
      await closeEvents();
      deliveries.flush();
      if (deliveryDb.open) deliveryDb.close();
      if (db.open) db.close();
    },
  };
}
