import type { Database, Statement } from 'better-sqlite3';
import type { ClusterStore, NodeRecord } from '../types.js';
import { leaseFromRow, nodeFromRow, type LeaseRow, type NodeRow } from '../rows.js';

/**
 * Leases and heartbeats in the one database file. There is only ever one
 * SQLite node, but the leases are real (exclusive, expiring), so the code that
 * takes them behaves the same on either backend. better-sqlite3 is synchronous,
 * which makes every statement here atomic on its own.
 */
export class SqliteClusterStore implements ClusterStore {
  private readonly stmt: {
    acquire: Statement<[{ name: string; holder: string; expiresAt: number; now: number }]>;
    release: Statement<[string, string]>;
    leases: Statement<[{ prefix: string }], LeaseRow>;
    heartbeat: Statement<[string, number, number, string, string, string, string]>;
    nodes: Statement<[number], NodeRow>;
    removeNode: Statement<[string]>;
  };

  constructor(db: Database) {
    this.stmt = {
      // The DO UPDATE's WHERE makes "free, expired, or already mine" one atomic test; no change means someone else holds it.
      acquire: db.prepare(
        `INSERT INTO leases (name, holder, expires_at) VALUES (@name, @holder, @expiresAt) ON CONFLICT (name) DO UPDATE
         SET holder = excluded.holder, expires_at = excluded.expires_at WHERE leases.holder = excluded.holder OR leases.expires_at < @now`,
      ),
      release: db.prepare('DELETE FROM leases WHERE name = ? AND holder = ?'),
      leases: db.prepare('SELECT name, holder, expires_at FROM leases WHERE substr(name, 1, length(@prefix)) = @prefix ORDER BY name'),
      heartbeat: db.prepare(
        `INSERT INTO nodes (id, started_at, last_seen, connections, version, bus, admin_key) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE
         SET started_at = excluded.started_at, last_seen = excluded.last_seen, connections = excluded.connections, version = excluded.version,
         bus = excluded.bus, admin_key = excluded.admin_key`,
      ),
      nodes: db.prepare('SELECT id, started_at, last_seen, connections, version, bus, admin_key FROM nodes WHERE last_seen >= ? ORDER BY id'),
      removeNode: db.prepare('DELETE FROM nodes WHERE id = ?'),
    };
  }

  async acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return this.stmt.acquire.run({ name, holder, expiresAt: now + ttlMs, now }).changes > 0;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    this.stmt.release.run(name, holder);
  }

  async leases(prefix: string): Promise<Array<{ name: string; holder: string; expiresAt: number }>> {
    return this.stmt.leases.all({ prefix }).map(leaseFromRow);
  }

  async heartbeat(node: NodeRecord): Promise<void> {
    this.stmt.heartbeat.run(node.id, node.startedAt, node.lastSeen, JSON.stringify(node.connections), node.version, node.bus, node.adminKey);
  }

  async nodes(since: number): Promise<NodeRecord[]> {
    return this.stmt.nodes.all(since).map(nodeFromRow);
  }

  async removeNode(id: string): Promise<void> {
    this.stmt.removeNode.run(id);
  }
}
