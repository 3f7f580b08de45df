import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import type { Storage } from '../types.js';
import { migrate } from './schema.js';
import { SqliteEventStore } from './event-store.js';
import { SqliteKeyStore, SqliteSettingsStore } from './key-store.js';
import { SqliteSourceStore } from './source-store.js';
import { SqliteDeliveryStore } from './delivery-store.js';
import { SqliteClusterStore } from './cluster-store.js';

export interface SqliteOptions {
  /** A directory; the database is `herald.db` inside it. `:memory:` keeps nothing. */
  dataDir: string;
  synchronous?: 'full' | 'normal';
}

export async function openSqliteStorage(options: SqliteOptions): Promise<Storage> {
  let file = ':memory:';
  if (options.dataDir !== ':memory:') {
    mkdirSync(options.dataDir, { recursive: true });
    file = join(options.dataDir, 'herald.db');
  }
  const db = new BetterSqlite3(file);
  let deliveryDb: BetterSqlite3.Database | undefined;
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = OFF');
    migrate(db);
    // Delivery bookkeeping may skip fsync: see SqliteDeliveryStore for why that is safe. In memory there is one database only.
    deliveryDb = file === ':memory:' ? db : new BetterSqlite3(file);
    if (deliveryDb !== db) {
      deliveryDb.pragma('busy_timeout = 5000');
      deliveryDb.pragma('synchronous = NORMAL');
    }
  } catch (error) {
    deliveryDb?.close();
    db.close();
    throw error;
  }
  const settings = new SqliteSettingsStore(db);
  // One epoch per database: if the file is lost, every channel's history is lost with it.
  const epoch = await settings.setIfAbsent('epoch', randomBytes(8).toString('hex'));
  const events = new SqliteEventStore(db, epoch);
  const deliveries = new SqliteDeliveryStore(db, deliveryDb);
  return {
    events,
    keys: new SqliteKeyStore(db),
    sources: new SqliteSourceStore(db),
    deliveries,
    settings,
    // Leases are renewed every few seconds and worthless after a restart: no fsync for them (the NORMAL connection).
    cluster: new SqliteClusterStore(deliveryDb),
    async close() {
      await events.close();
      deliveries.flush();
      if (deliveryDb.open) deliveryDb.close();
      if (db.open) db.close();
    },
  };
}
