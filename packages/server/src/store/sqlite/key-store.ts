import type { Database, Statement } from 'better-sqlite3';
import type { ApiKeyRecord, KeyStore, SettingsStore } from '../types.js';
import { keyFromRow as fromRow, type KeyRow } from '../rows.js';

export class SqliteKeyStore implements KeyStore {
  private readonly stmt: {
    insert: Statement<[string, string, string, string, string, string, number]>;
    byHash: Statement<[string], KeyRow>;
    byId: Statement<[string], KeyRow>;
    all: Statement<[], KeyRow>;
    revoke: Statement<[number, string]>;
  };

  constructor(db: Database) {
    this.stmt = {
      insert: db.prepare(
        'INSERT INTO api_keys (id, name, hash, prefix, scopes, channels, created) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      byHash: db.prepare('SELECT * FROM api_keys WHERE hash = ?'),
      byId: db.prepare('SELECT * FROM api_keys WHERE id = ?'),
      all: db.prepare('SELECT * FROM api_keys ORDER BY created, id'),
      revoke: db.prepare('UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL'),
    };
  }

  async insert(r: ApiKeyRecord): Promise<void> {
    this.stmt.insert.run(r.id, r.name, r.hash, r.prefix, JSON.stringify(r.scopes), JSON.stringify(r.channels), r.createdAt);
  }

  async findByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const row = this.stmt.byHash.get(hash);
    return row && fromRow(row);
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const row = this.stmt.byId.get(id);
    return row && fromRow(row);
  }

  async list(): Promise<ApiKeyRecord[]> {
    return this.stmt.all.all().map(fromRow);
  }

  async revoke(id: string, at: number): Promise<boolean> {
    return this.stmt.revoke.run(at, id).changes > 0;
  }
}

export class SqliteSettingsStore implements SettingsStore {
  private readonly getStmt: Statement<[string], { value: string }>;
  private readonly putStmt: Statement<[string, string]>;

  constructor(private readonly db: Database) {
    this.getStmt = db.prepare('SELECT value FROM settings WHERE name = ?');
    this.putStmt = db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING');
  }

  async get(name: string): Promise<string | undefined> {
    return this.getStmt.get(name)?.value;
  }

  async setIfAbsent(name: string, value: string): Promise<string> {
    this.putStmt.run(name, value);
    return this.getStmt.get(name)!.value;
  }

  async set(name: string, value: string): Promise<void> {
    this.db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value').run(name, value);
  }
}
