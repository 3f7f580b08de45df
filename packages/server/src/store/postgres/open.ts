import { randomBytes } from 'node:crypto';
import type { SchemaUpgrade, Storage } from '../types.js';
import { Database, storeError, type PostgresOptions } from './database.js';
import { migrate } from './schema.js';
import { StartupError } from '../../startup-error.js';
import { redact } from '../../util/redact-url.js';
import { PostgresEventStore } from './event-store.js';
import { PostgresKeyStore, PostgresSettingsStore } from './key-store.js';
import { PostgresSourceStore } from './source-store.js';
import { PostgresDeliveryStore } from './delivery-store.js';
import { PostgresClusterStore } from './cluster-store.js';

export type { PostgresOptions } from './database.js';

const MIGRATION_TIMEOUT_MS = 600_000;

interface OpenOptions {
  /**
   * Refuse a database no Herald has written to, rather than create the schema there: for tools that act on a
   * cluster's store (`herald admin-key reset`), where a mistyped URL would otherwise get a store no node reads.
   */
  existing?: boolean;
}

/**
 * Opens the store shared by every node of a cluster. Rejects with
 * `store_unavailable` when the server cannot be reached within the
 * connect timeout; after that, the pool reconnects by itself.
 */
export async function openPostgresStorage(options: PostgresOptions & OpenOptions): Promise<Storage> {
  const db = new Database(options);
  let epoch: string;
  let upgraded: SchemaUpgrade | undefined;
  const settings = new PostgresSettingsStore(db);
  try {
    if (options.existing && (await db.query("SELECT to_regclass('schema_versions') IS NOT NULL AS found")).rows[0]?.found !== true) {
      throw new StartupError(`${redact(options.url)} holds no Herald data (no schema_versions table): pass the --store the nodes run with.`);
    }
    // Schema changes may rewrite big tables: they get minutes, not the request-sized query timeout.
    const migrations = new Database({ ...options, poolSize: 1, queryTimeoutMs: MIGRATION_TIMEOUT_MS });
    upgraded = await migrate(migrations.pool)
      .catch((error: unknown) => Promise.reject(storeError(error)))
      .finally(() => migrations.end());
    // One epoch per database: if it is lost, every channel's history is lost with it.
    epoch = await settings.setIfAbsent('epoch', randomBytes(8).toString('hex'));
  } catch (error) {
    await db.end();
    throw error;
  }
  const events = new PostgresEventStore(db, epoch);
  const bookkeeping = new Database({ ...options, poolSize: Math.max(2, Math.ceil((options.poolSize ?? 10) / 2)), asyncCommit: true });
  let closing: Promise<void> | undefined;
  return {
    upgraded,
    events,
    keys: new PostgresKeyStore(db),
    sources: new PostgresSourceStore(db),
    deliveries: new PostgresDeliveryStore(db, bookkeeping),
    settings,
    cluster: new PostgresClusterStore(db),
    close() {
      closing ??= events.close().then(() => Promise.all([db.end(), bookkeeping.end()]).then(() => undefined));
      return closing;
    },
  };
}
