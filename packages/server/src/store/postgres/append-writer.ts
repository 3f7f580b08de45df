import { HeraldError, type HeraldEvent } from '@herald/protocol';
import type { AppendRequest, AppendResult } from '../types.js';
import { dataText, eventFromInput, eventFromRow, indexesId, metaText, type EventRow } from '../rows.js';
import { isRetryable, isUnavailable, isUniqueViolation, type Tx } from './database.js';

/** A request's result, or the error it alone failed with. */
export type Outcome = AppendResult | { error: unknown };

/** An event already in the log (or written earlier in this transaction), by id. */
interface Known {
  cid: number;
  event: HeraldEvent;
}

/**
 * What a flush has written so far inside its transaction. A request in a
 * savepoint works on a child layer, merged only once the savepoint is
 * released, so a failed request leaves no trace: no seq, no id.
 */
class FlushState {
  constructor(
    readonly heads: Map<number, number>,
    readonly known = new Map<string, Known>(),
    private readonly parent?: FlushState,
  ) {}

  child(): FlushState {
    return new FlushState(new Map(), new Map(), this);
  }

  head(cid: number): number {
    return this.heads.get(cid) ?? this.parent!.head(cid);
  }

  find(id: string): Known | undefined {
    return this.known.get(id) ?? this.parent?.find(id);
  }

  mergeInto(target: FlushState): void {
    for (const [cid, head] of this.heads) target.heads.set(cid, head);
    for (const [id, known] of this.known) target.known.set(id, known);
  }
}

/** New rows, as the columns of one multi-row INSERT. */
class EventColumns {
  readonly cid: number[] = [];
  readonly seq: number[] = [];
  readonly id: string[] = [];
  readonly type: string[] = [];
  readonly time: number[] = [];
  readonly data: string[] = [];
  readonly meta: Array<string | null> = [];
  /** False only for a generated id, which the unique index of ids leaves out (schema 4). */
  readonly chosen: boolean[] = [];
}

/** Where a claimed key's events are, as the JSON text `[[cid, seq], …]` in request order, for its replays. */
type KeyPositions = Array<[key: string, positions: string]>;

/** Thrown inside a shared transaction when some request failed: the flush runs again, one savepoint per request. */
export class IsolateRequests extends Error {}

const EVENT_COLUMNS = 'e.seq, e.id, e.type, e.time, e.data, e.meta';
const INSERT_EVENTS = `INSERT INTO events (cid, seq, id, type, time, data, meta, chosen)
                       SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::boolean[])`;
/** Exported for the test that reads their plans. */
export const SQL = {
  // ORDER BY under FOR UPDATE locks the rows in that order: every node takes them in cid order, so no deadlock.
  lockChannels: 'SELECT cid, head FROM channels WHERE cid = ANY($1::int[]) ORDER BY cid FOR UPDATE',
  // \`AND e.chosen\` lets the planner use the index, which holds chosen ids only.
  chosenEventsById: `SELECT e.cid, c.name AS channel, ${EVENT_COLUMNS} FROM events e JOIN channels c USING (cid)
                     WHERE e.id = ANY($1::text[]) AND e.chosen`,
  eventsAt: `SELECT e.cid, c.name AS channel, ${EVENT_COLUMNS} FROM unnest($1::int[], $2::bigint[]) AS x(cid, seq)
             JOIN events e ON e.cid = x.cid AND e.seq = x.seq JOIN channels c ON c.cid = e.cid`,
  insertEvents: INSERT_EVENTS,
  // The same, and the claimed keys' positions, in one round trip (a data-modifying WITH runs whatever the outer query reads).
  insertEventsAndPositions: `WITH rows AS (${INSERT_EVENTS})
                             UPDATE idempotency SET positions = x.positions FROM unnest($9::text[], $10::text[]) AS x(key, positions)
                             WHERE idempotency.key = x.key`,
  setHeads: 'UPDATE channels SET head = x.head FROM unnest($1::int[], $2::bigint[]) AS x(cid, head) WHERE channels.cid = x.cid',
  // A key another node holds uncommitted makes this wait; once that node commits, the conflict means "replay".
  claimKeys: `INSERT INTO idempotency (key, ids, created) SELECT key, ids, $3 FROM unnest($1::text[], $2::text[]) AS x(key, ids)
              ON CONFLICT (key) DO NOTHING RETURNING key`,
  keyIds: 'SELECT key, ids, positions FROM idempotency WHERE key = ANY($1::text[])',
};

/**
 * The statements every flush runs, prepared once per connection by name: PostgreSQL then skips parsing and planning
 * them on each flush. Measured with bench:cluster, alternating eight times: single publishes 12% more (8,880 to
 * 10,780 events/s against 8,218 to 9,508 unnamed); batches of 100 within their noise. A pooler in front of
 * PostgreSQL must keep prepared statements: see "Connections and poolers" in the README.
 */
const PREPARED = {
  lockChannels: { name: 'herald_lock_channels', text: SQL.lockChannels },
  insertEvents: { name: 'herald_insert_events', text: SQL.insertEvents },
  setHeads: { name: 'herald_set_heads', text: SQL.setHeads },
};

/**
 * Writes one flush of append requests inside its transaction. The channel
 * rows are locked first, in cid order, so the heads read under the lock
 * are the truth for every node until COMMIT; ids and idempotency keys are
 * settled before any seq is given out, so a duplicate never leaves a hole.
 *
 * Two ways to write: together (every request's events in one INSERT, a
 * fixed number of round trips per flush whatever its size), and isolated
 * (each request in its own savepoint). A flush is written together first;
 * if any of its requests fails, it is rolled back and written isolated, so
 * that request fails alone.
 */
export async function writeFlush(tx: Tx, requests: AppendRequest[], cids: Map<string, number>, isolated: boolean): Promise<Outcome[]> {
  const touched = [...new Set(requests.flatMap((r) => r.events.map((e) => cids.get(e.channel)!)))];
  const locked = await tx.query<{ cid: number; head: number }>({ ...PREPARED.lockChannels, values: [touched] });
  const state = new FlushState(new Map(locked.rows.map((r) => [r.cid, r.head])));
  const before = new Map(state.heads);
  // Under the locks, every earlier append of these ids to these channels has committed and is visible.
  // A generated id cannot be among them (publishers may not choose that form): only chosen ids are looked up.
  const chosen = requests.flatMap((r) => r.events.filter(indexesId).map((e) => e.id));
  if (chosen.length > 0) for (const [id, known] of await eventsById(tx, chosen)) state.known.set(id, known);

  const outcomes = isolated ? await writeIsolated(tx, requests, state, cids) : await writeTogether(tx, requests, state, cids);
  const moved = [...state.heads].filter(([cid, head]) => before.get(cid) !== head);
  if (moved.length > 0) await tx.query({ ...PREPARED.setHeads, values: [moved.map(([cid]) => cid), moved.map(([, head]) => head)] });
  return outcomes;
}

async function writeTogether(tx: Tx, requests: AppendRequest[], state: FlushState, cids: Map<string, number>): Promise<Outcome[]> {
  // Alone in the transaction, a request's failure is its own: report it as is.
  const fail = (error: unknown) => (requests.length === 1 || isRetryable(error) || isUnavailable(error) ? error : new IsolateRequests());
  const keyed = requests.filter((r) => r.idempotencyKey !== undefined);
  // One key twice in a flush: the second is a replay of the first only if the first succeeds. Let savepoints decide.
  if (new Set(keyed.map((r) => r.idempotencyKey)).size < keyed.length) throw new IsolateRequests();
  const columns = new EventColumns();
  const outcomes: Outcome[] = [];
  try {
    const claimed = await claimKeys(tx, keyed);
    const replays = await replay(tx, keyed.map((r) => r.idempotencyKey!).filter((key) => !claimed.has(key)));
    const positions: KeyPositions = [];
    for (const request of requests) {
      const key = request.idempotencyKey;
      if (key !== undefined && !claimed.has(key)) {
        outcomes.push(replays.get(key)!);
        continue;
      }
      const result = plan(request, state, cids, columns);
      if (key !== undefined) positions.push([key, positionsOf(result, cids)]);
      outcomes.push(result);
    }
    await insert(tx, columns, positions);
  } catch (error) {
    throw fail(error);
  }
  return outcomes;
}

async function writeIsolated(tx: Tx, requests: AppendRequest[], state: FlushState, cids: Map<string, number>): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const request of requests) {
    const layer = state.child();
    await tx.query('SAVEPOINT request');
    try {
      outcomes.push(await writeOne(tx, request, layer, cids));
      await tx.query('RELEASE SAVEPOINT request');
      layer.mergeInto(state);
    } catch (error) {
      // A deadlock or a lost connection is not this request's fault: the whole transaction retries or fails.
      if (isRetryable(error) || isUnavailable(error)) throw error;
      await tx.query('ROLLBACK TO SAVEPOINT request');
      outcomes.push({ error });
    }
  }
  return outcomes;
}

async function writeOne(tx: Tx, request: AppendRequest, state: FlushState, cids: Map<string, number>): Promise<AppendResult> {
  const key = request.idempotencyKey;
  if (key !== undefined && !(await claimKeys(tx, [request])).has(key)) return (await replay(tx, [key])).get(key)!;
  const columns = new EventColumns();
  const result = plan(request, state, cids, columns);
  await insert(tx, columns, key === undefined ? [] : [[key, positionsOf(result, cids)]]);
  return result;
}

/** Gives each new event its seq and queues its row; a known id is answered with the original event. */
function plan(request: AppendRequest, state: FlushState, cids: Map<string, number>, columns: EventColumns): AppendResult {
  const events: HeraldEvent[] = [];
  const created: boolean[] = [];
  for (const input of request.events) {
    const cid = cids.get(input.channel)!;
    const original = state.find(input.id);
    if (original) {
      if (original.cid !== cid) throw idConflict(input.id);
      events.push(original.event);
      created.push(false);
      continue;
    }
    const seq = state.head(cid) + 1;
    state.heads.set(cid, seq);
    const event = eventFromInput(input, seq);
    state.known.set(input.id, { cid, event });
    events.push(event);
    created.push(true);
    columns.cid.push(cid);
    columns.seq.push(seq);
    columns.id.push(input.id);
    columns.type.push(input.type);
    columns.time.push(input.time);
    columns.data.push(dataText(input.data));
    columns.meta.push(metaText(input.meta));
    columns.chosen.push(indexesId(input));
  }
  return { events, created, replayed: false };
}

/** A duplicate's original is on the same channel as its input (else the request failed): every event's cid is its channel's. */
function positionsOf(result: AppendResult, cids: Map<string, number>): string {
  return JSON.stringify(result.events.map((e) => [cids.get(e.channel)!, e.seq]));
}

async function insert(tx: Tx, c: EventColumns, keys: KeyPositions): Promise<void> {
  if (c.id.length === 0 && keys.length === 0) return;
  const columns = [c.cid, c.seq, c.id, c.type, c.time, c.data, c.meta, c.chosen];
  try {
    if (keys.length === 0) await tx.query({ ...PREPARED.insertEvents, values: columns });
    else await tx.query(SQL.insertEventsAndPositions, [...columns, keys.map(([key]) => key), keys.map(([, positions]) => positions)]);
  } catch (error) {
    // Another node appended one of these ids to another channel after our check: that channel's lock is not ours.
    throw isUniqueViolation(error, 'events_by_chosen_id') ? idConflict() : error;
  }
}

/** Records the keys with the ids their requests will answer (a duplicate's id is its original's); resolves with those now ours. */
async function claimKeys(tx: Tx, keyed: AppendRequest[]): Promise<Set<string>> {
  if (keyed.length === 0) return new Set();
  const ids = keyed.map((r) => JSON.stringify(r.events.map((e) => e.id)));
  const { rows } = await tx.query<{ key: string }>(SQL.claimKeys, [keyed.map((r) => r.idempotencyKey), ids, Date.now()]);
  return new Set(rows.map((r) => r.key));
}

/** The original results of earlier requests with these keys; events trimmed since are left out. */
async function replay(tx: Tx, keys: string[]): Promise<Map<string, AppendResult>> {
  const results = new Map<string, AppendResult>();
  if (keys.length === 0) return results;
  const { rows } = await tx.query<{ key: string; ids: string; positions: string | null }>(SQL.keyIds, [keys]);
  // Found by position, as generated ids are not indexed. A key an older node claimed has none: it is found by its
  // ids, every one of which that node wrote (or found) with \`chosen\` left at its default, so all are indexed. (A node
  // from before the generated form was reserved could have taken one of ours as its own id: the README says to stop
  // older nodes before the upgrade.)
  const byPosition = new Map<string, Array<[number, number]>>();
  const byId = new Map<string, string[]>();
  for (const row of rows) {
    if (row.positions !== null) byPosition.set(row.key, JSON.parse(row.positions) as Array<[number, number]>);
    else byId.set(row.key, JSON.parse(row.ids) as string[]);
  }
  const at = await eventsAt(tx, [...byPosition.values()].flat());
  const known = await eventsById(tx, [...byId.values()].flat());
  // A key expired between its conflict and this read replays as nothing, like one whose events were all trimmed.
  for (const key of keys) {
    const found = byPosition.get(key)?.map(([cid, seq]) => at.get(`${cid}:${seq}`)) ?? byId.get(key)?.map((id) => known.get(id)?.event) ?? [];
    const events = found.filter((e): e is HeraldEvent => e !== undefined);
    results.set(key, { events, created: events.map(() => false), replayed: true });
  }
  return results;
}

type FoundRow = EventRow & { cid: number; channel: string };

/** Events with chosen ids (or from before schema 4), by id. */
async function eventsById(tx: Tx, ids: string[]): Promise<Map<string, Known>> {
  if (ids.length === 0) return new Map();
  const { rows } = await tx.query<FoundRow>(SQL.chosenEventsById, [ids]);
  return new Map(rows.map((row) => [row.id, { cid: row.cid, event: eventFromRow(row.channel, row) }]));
}

/** Events by `cid:seq`; a position trimmed since is missing. */
async function eventsAt(tx: Tx, positions: Array<[number, number]>): Promise<Map<string, HeraldEvent>> {
  if (positions.length === 0) return new Map();
  const { rows } = await tx.query<FoundRow>(SQL.eventsAt, [positions.map(([cid]) => cid), positions.map(([, seq]) => seq)]);
  return new Map(rows.map((row) => [`${row.cid}:${row.seq}`, eventFromRow(row.channel, row)]));
}

function idConflict(id?: string): HeraldError {
  return new HeraldError('event_id_conflict', `${id === undefined ? 'An event id' : `Event id ${id}`} is already used on another channel.`);
}
