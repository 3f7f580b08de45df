// The SQLite event store's thread: a SqliteEventStore on a connection of its own, answering ThreadedEventStore.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteEventStore } from '../event-store.js';
import { WalSync } from '../wal-sync.js';
import { Checkpointer } from '../checkpointer.js';
import { toWire, unpackEvents, type PackedEvents, type AppendReply, type Call, type Post, type ThreadDiagnostics, type ThreadOptions } from './protocol.js';

const port = parentPort!;
const options = workerData as ThreadOptions;

let outbox: Post = { replies: [], commits: [], checkpointFailures: [] };
let posting = false;

/** Posts once per turn of this thread's event loop: a flush answers many appends, and they cross in one message. */
function post(): void {
  if (posting) return;
  posting = true;
  setImmediate(() => {
    posting = false;
    const sent = outbox;
    outbox = { replies: [], commits: [], checkpointFailures: [] };
    port.postMessage(sent);
  });
}

const db = new BetterSqlite3(options.file);
db.pragma('busy_timeout = 5000');
// COMMIT only write()s; WalSync (or, with `synchronous: normal`, nothing) makes it durable. See open.ts.
db.pragma('synchronous = NORMAL');
const walSync = options.walSync ? new WalSync(`${options.file}-wal`, options.syncsInFlight) : undefined;
const checkpointer = new Checkpointer(options.file, (error, givenUp) => {
  outbox.checkpointFailures.push([toWire(error), givenUp]);
  post();
});
const store = new SqliteEventStore(db, options.epoch, {
  maxCachedChannels: options.channelCache,
  durability: walSync,
  checkpoints: checkpointer,
  onCommit: (writes, seconds) => outbox.commits.push([writes, seconds]),
});

async function append(packed: PackedEvents, idempotencyKey: string | undefined): Promise<AppendReply> {
  const result = await store.append({ events: unpackEvents(packed), idempotencyKey });
  if (result.replayed) return { replayed: true, events: result.events };
  const reply: AppendReply = { replayed: false, created: result.created, seqs: result.events.map((e) => e.seq) };
  // Only an event that was in the log already carries its data back: an appended one holds the caller's own.
  if (result.created.includes(false)) reply.originals = result.events.map((event, i) => (result.created[i] ? null : event));
  return reply;
}

async function close(): Promise<void> {
  await store.close();
  await checkpointer.close();
  walSync?.close();
  db.close();
}

const operations: Record<Call['op'], (...args: never[]) => Promise<unknown>> = {
  append,
  read: store.read.bind(store),
  stubs: store.stubs.bind(store),
  head: store.head.bind(store),
  trim: store.trim.bind(store),
  expireIdempotencyKeys: store.expireIdempotencyKeys.bind(store),
  channels: store.channels.bind(store),
  ping: store.ping.bind(store),
  probeWrite: store.probeWrite.bind(store),
  close,
  diagnostics: async (): Promise<ThreadDiagnostics> => ({ walSyncs: walSync?.started, checkpoints: checkpointer.runs }),
};

port.on('message', (calls: Call[]) => {
  for (const call of calls) {
    let answer: Promise<unknown>;
    try {
      answer = operations[call.op](...(call.args as never[]));
    } catch (error) {
      answer = Promise.reject(error);
    }
    answer.then(
      (ok) => outbox.replies.push({ id: call.id, ok }),
      (error: unknown) => outbox.replies.push({ id: call.id, error: toWire(error) }),
    ).finally(post);
  }
});
port.postMessage('ready');
