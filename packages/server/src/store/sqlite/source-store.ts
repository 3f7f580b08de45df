import type { Database, Statement } from 'better-sqlite3';
import type { SourceRecord, SourceSecret, SourceStore } from '../types.js';
import { sourceFromRow as fromRow, type SourceRow } from '../rows.js';

export class SqliteSourceStore implements SourceStore {
  private readonly stmt: {
    insert: Statement<[string, string, string, number, string, number]>;
    get: Statement<[string], SourceRow>;
    all: Statement<[], SourceRow>;
    setSecrets: Statement<[string, string]>;
    delete: Statement<[string]>;
  };

  constructor(db: Database) {
    this.stmt = {
      insert: db.prepare(
        'INSERT INTO sources (name, provider, channel, tolerance, secrets, created) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
      ),
      get: db.prepare('SELECT * FROM sources WHERE name = ?'),
      all: db.prepare('SELECT * FROM sources ORDER BY name'),
      setSecrets: db.prepare('UPDATE sources SET secrets = ? WHERE name = ?'),
      delete: db.prepare('DELETE FROM sources WHERE name = ?'),
    };
  }

  async insert(r: SourceRecord): Promise<boolean> {
    return this.stmt.insert.run(r.name, r.provider, r.channel, r.tolerance, JSON.stringify(r.secrets), r.createdAt).changes > 0;
  }

  async get(name: string): Promise<SourceRecord | undefined> {
    const row = this.stmt.get.get(name);
    return row && fromRow(row);
  }

  async list(): Promise<SourceRecord[]> {
    return this.stmt.all.all().map(fromRow);
  }

  async setSecrets(name: string, secrets: SourceSecret[]): Promise<boolean> {
    return this.stmt.setSecrets.run(JSON.stringify(secrets), name).changes > 0;
  }

  async delete(name: string): Promise<boolean> {
    return this.stmt.delete.run(name).changes > 0;
  }
}
