import type { ClusterStore, NodeRecord } from '../types.js';
import { leaseFromRow, nodeFromRow, type LeaseRow, type NodeRow } from '../rows.js';
import type { Database } from './database.js';

const SQL = {
  // One statement decides "free, expired, or already mine" and takes the lease: two nodes racing for it
  // queue on the row, and the second sees the first one's lease in the WHERE. No row back: someone else holds it.
  acquire: `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE
            SET holder = excluded.holder, expires_at = excluded.expires_at
            WHERE leases.holder = excluded.holder OR leases.expires_at < $4 RETURNING name`,
  release: 'DELETE FROM leases WHERE name = $1 AND holder = $2',
  leases: 'SELECT name, holder, expires_at FROM leases WHERE starts_with(name, $1) ORDER BY name',
  heartbeat: `INSERT INTO nodes (id, started_at, last_seen, connections, version, bus, admin_key) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE
              SET started_at = excluded.started_at, last_seen = excluded.last_seen, connections = excluded.connections, version = excluded.version,
              bus = excluded.bus, admin_key = excluded.admin_key`,
  nodes: 'SELECT id, started_at, last_seen, connections, version, bus, admin_key FROM nodes WHERE last_seen >= $1 ORDER BY id',
  removeNode: 'DELETE FROM nodes WHERE id = $1',
};

export class PostgresClusterStore implements ClusterStore {
  constructor(private readonly db: Database) {}

  async acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return (await this.db.rows(SQL.acquire, [name, holder, now + ttlMs, now])).length > 0;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.db.query(SQL.release, [name, holder]);
  }

  async leases(prefix: string): Promise<Array<{ name: string; holder: string; expiresAt: number }>> {
    return (await this.db.rows<LeaseRow>(SQL.leases, [prefix])).map(leaseFromRow);
  }

  async heartbeat(node: NodeRecord): Promise<void> {
    await this.db.query(SQL.heartbeat, [node.id, node.startedAt, node.lastSeen, JSON.stringify(node.connections), node.version, node.bus, node.adminKey]);
  }

  async nodes(since: number): Promise<NodeRecord[]> {
    return (await this.db.rows<NodeRow>(SQL.nodes, [since])).map(nodeFromRow);
  }

  async removeNode(id: string): Promise<void> {
    await this.db.query(SQL.removeNode, [id]);
  }
}
