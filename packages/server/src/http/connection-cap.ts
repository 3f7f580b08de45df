import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { countDroppedConnection } from '../metrics/index.js';

/**
 * Open files kept back from client connections when `limits.connections` is automatic: the store's files, the
 * outbound deliveries' sockets, PostgreSQL and Redis. Once a client flood takes every file descriptor, none of
 * those can open, and an outbound delivery's failures would count against its endpoint.
 */
export const FILES_RESERVED = 512;

/** The process's soft limit on open files (Node raises it to the hard limit at start), where Linux says it. */
export function openFilesLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | undefined {
  try {
    const line = read()
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `limits.connections` resolved: a positive setting as it is; 0 (automatic) as the open-files limit less
 * FILES_RESERVED, or no cap where that limit is unknown or unlimited.
 */
export function connectionCap(configured: number, filesLimit: number | undefined): number | undefined {
  if (configured > 0) return configured;
  if (filesLimit === undefined || !Number.isFinite(filesLimit)) return undefined;
  return Math.max(1, filesLimit - FILES_RESERVED);
}

/** Past the cap Node closes each new connection at once (counted), so the store and outbound work keep their files. */
export function capConnections(server: Server, cap: number | undefined): void {
  if (cap === undefined) return;
  server.maxConnections = cap;
  server.on('drop', countDroppedConnection);
}
