// SQLite alone, for bench:publish: the events of a batch publish inserted with Herald's own schema and statements
// (its EventRowWriter), one transaction per batch, on this thread, with no HTTP, no validation and no sync
// (synchronous = NORMAL in WAL mode, so COMMIT writes the WAL and does not wait for the disk), with generated ids as
// the publishes have. What one core can append through SQLite on this machine at best: the batched aim is read
// beside it.
import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '../packages/server/src/store/sqlite/schema.js';
import { EventRowWriter } from '../packages/server/src/store/sqlite/event-rows.js';
import { newEventId } from '../packages/server/src/log/ids.js';

export interface FloorResult {
  eventsPerSecond: number;
  /** This process's CPU (user + system) per event, µs. */
  cpuPerEvent: number;
}

/**
 * With `spread`, the batches' events go to `spread` channels in turn instead of their own (one channel per user, say),
 * so each commit touches as many channels as it holds events: what the table's layout costs when channels are many.
 */
export function sqliteFloor(events: ReadonlyArray<{ channel: string; type: string; data: unknown }>, seconds: number, spread?: number): FloorResult {
  const dir = mkdtempSync(join(tmpdir(), 'herald-sqlite-floor-'));
  const db = new BetterSqlite3(join(dir, 'herald.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db);
    const cids = new Map<string, number>();
    const heads = new Map<string, number>();
    const addChannel = db.prepare("INSERT INTO channels (name, epoch) VALUES (?, 'floor')");
    const names = spread === undefined ? events.map((e) => e.channel) : Array.from({ length: spread }, (_, i) => `spread-${i}`);
    for (const channel of names) {
      if (!cids.has(channel)) cids.set(channel, Number(addChannel.run(channel).lastInsertRowid));
    }
    const rows = new EventRowWriter(db);
    let next = 0;
    const append = db.transaction(() => {
      const time = Date.now();
      for (const event of events) {
        const channel = spread === undefined ? event.channel : names[next++ % spread]!;
        const seq = (heads.get(channel) ?? 0) + 1;
        heads.set(channel, seq);
        rows.queueGenerated(cids.get(channel)!, seq, newEventId(time), event.type, time, JSON.stringify(event.data), null);
      }
      rows.flush();
    });
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    let batches = 0;
    while (performance.now() - started < seconds * 1000) {
      append();
      batches++;
    }
    const elapsed = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const appended = batches * events.length;
    return { eventsPerSecond: appended / elapsed, cpuPerEvent: (cpu.user + cpu.system) / appended };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
