import type { SourceRecord, SourceSecret, SourceStore } from '../types.js';
import { sourceFromRow, type SourceRow } from '../rows.js';
import type { Database } from './database.js';

export class PostgresSourceStore implements SourceStore {
  constructor(private readonly db: Database) {}

  private async changed(sql: string, params: unknown[]): Promise<boolean> {
    return ((await this.db.query(sql, params)).rowCount ?? 0) > 0;
  }

  insert(r: SourceRecord): Promise<boolean> {
    return this.changed(
      'INSERT INTO sources (name, provider, channel, tolerance, secrets, created) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING',
      [r.name, r.provider, r.channel, r.tolerance, JSON.stringify(r.secrets), r.createdAt],
    );
  }

  async get(name: string): Promise<SourceRecord | undefined> {
    const [row] = await this.db.rows<SourceRow>('SELECT * FROM sources WHERE name = $1', [name]);
    return row && sourceFromRow(row);
  }

  async list(): Promise<SourceRecord[]> {
    return (await this.db.rows<SourceRow>('SELECT * FROM sources ORDER BY name')).map(sourceFromRow);
  }

  setSecrets(name: string, secrets: SourceSecret[]): Promise<boolean> {
    return this.changed('UPDATE sources SET secrets = $1 WHERE name = $2', [JSON.stringify(secrets), name]);
  }

  delete(name: string): Promise<boolean> {
    return this.changed('DELETE FROM sources WHERE name = $1', [name]);
  }
}
