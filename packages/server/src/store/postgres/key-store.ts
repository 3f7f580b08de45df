import type { ApiKeyRecord, KeyStore, SettingsStore } from '../types.js';
import { keyFromRow, type KeyRow } from '../rows.js';
import type { Database } from './database.js';

export class PostgresKeyStore implements KeyStore {
  constructor(private readonly db: Database) {}

  async insert(r: ApiKeyRecord): Promise<void> {
    await this.db.query('INSERT INTO api_keys (id, name, hash, prefix, scopes, channels, created) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      r.id, r.name, r.hash, r.prefix, JSON.stringify(r.scopes), JSON.stringify(r.channels), r.createdAt,
    ]);
  }

  async findByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.db.rows<KeyRow>('SELECT * FROM api_keys WHERE hash = $1', [hash]);
    return row && keyFromRow(row);
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.db.rows<KeyRow>('SELECT * FROM api_keys WHERE id = $1', [id]);
    return row && keyFromRow(row);
  }

  async list(): Promise<ApiKeyRecord[]> {
    return (await this.db.rows<KeyRow>('SELECT * FROM api_keys ORDER BY created, id')).map(keyFromRow);
  }

  async revoke(id: string, at: number): Promise<boolean> {
    return ((await this.db.query('UPDATE api_keys SET revoked = $1 WHERE id = $2 AND revoked IS NULL', [at, id])).rowCount ?? 0) > 0;
  }
}

export class PostgresSettingsStore implements SettingsStore {
  constructor(private readonly db: Database) {}

  async get(name: string): Promise<string | undefined> {
    const [row] = await this.db.rows<{ value: string }>('SELECT value FROM settings WHERE name = $1', [name]);
    return row?.value;
  }

  async setIfAbsent(name: string, value: string): Promise<string> {
    const [inserted] = await this.db.rows<{ value: string }>(
      'INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value',
      [name, value],
    );
    // Lost the race to another node: read its value in a new statement, whose snapshot includes that node's commit.
    return inserted?.value ?? (await this.get(name))!;
  }

  async set(name: string, value: string): Promise<void> {
    await this.db.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value', [name, value]);
  }
}
