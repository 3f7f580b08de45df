// What the SQLite event store's thread and the thread that uses it say to each other (see ThreadedEventStore).
import { HeraldError, isErrorCode } from '@herald/protocol';
import type { HeraldEvent } from '@herald/protocol';
import type { NewEvent } from '../../types.js';
import { dataText, metaText, SerializedJson } from '../../rows.js';

/** What the thread is started with. */
export interface ThreadOptions {
  file: string;
  epoch: string;
  channelCache: number | undefined;
  syncsInFlight: number | undefined;
  /** Whether WalSync makes commits durable; false with `synchronous: normal`, which asks for no sync of the WAL. */
  walSync: boolean;
}

/** The EventStore methods the thread answers, by name. */
export type Operation =
  | 'append'
  | 'read'
  | 'stubs'
  | 'head'
  | 'trim'
  | 'expireIdempotencyKeys'
  | 'channels'
  | 'ping'
  | 'probeWrite'
  | 'close'
  | 'diagnostics';

/** What the thread has done so far, for tests and diagnostics. */
export interface ThreadDiagnostics {
  /** WAL syncs started (see WalSync); undefined when nothing syncs the WAL (`synchronous: normal`). */
  walSyncs: number | undefined;
  /** Background checkpoints started (see Checkpointer). */
  checkpoints: number;
}

export interface Call {
  id: number;
  op: Operation;
  args: unknown[];
}

/**
 * An append's events as they cross: every string field end to end in one string, and the numbers (time, flags and
 * each string's length) in one array. A structured clone of one string and one typed array costs a copy of their
 * bytes; of an array of seven values per event it cost a third of a microsecond per event on each side, 8% of a
 * batched publish's CPU.
 */
export interface PackedEvents {
  text: string;
  numbers: Float64Array;
}

/** Per event in `numbers`: time, generated (0 or 1), meta present (0 or 1), then the lengths of its five strings. */
const NUMBERS = 8;

/**
 * Packs events, serializing each one's data and meta as the store would (dataText and metaText, in store/rows.ts).
 * Throws what JSON.stringify throws for data JSON cannot hold (a BigInt, a cycle).
 */
export function packEvents(events: readonly NewEvent[]): PackedEvents {
  const numbers = new Float64Array(events.length * NUMBERS);
  let text = '';
  for (let i = 0, k = 0; i < events.length; i++) {
    const event = events[i]!;
    const data = dataText(event.data);
    const meta = metaText(event.meta);
    numbers[k++] = event.time;
    numbers[k++] = event.generated === true ? 1 : 0;
    numbers[k++] = meta === null ? 0 : 1;
    numbers[k++] = event.channel.length;
    numbers[k++] = event.id.length;
    numbers[k++] = event.type.length;
    numbers[k++] = data.length;
    numbers[k++] = meta?.length ?? 0;
    text += event.channel + event.id + event.type + data + (meta ?? '');
  }
  return { text, numbers };
}

/** The events of {@link packEvents}, each with its data and meta as the JSON text they were sent as. */
export function unpackEvents({ text, numbers }: PackedEvents): NewEvent[] {
  const events: NewEvent[] = [];
  let at = 0;
  const next = (length: number) => text.slice(at, (at += length));
  for (let k = 0; k < numbers.length; k += NUMBERS) {
    const channel = next(numbers[k + 3]!);
    const id = next(numbers[k + 4]!);
    const type = next(numbers[k + 5]!);
    const data = new SerializedJson(next(numbers[k + 6]!));
    const meta = next(numbers[k + 7]!);
    events.push({
      channel,
      id,
      type,
      time: numbers[k]!,
      data,
      meta: numbers[k + 2] === 1 ? (new SerializedJson(meta) as unknown as Record<string, unknown>) : undefined,
      generated: numbers[k + 1] === 1,
    });
  }
  return events;
}

/**
 * An append's answer. Events it appended come back as their seqs only: the caller has everything else, the data
 * objects included, and builds them as the store would have. An event that was already in the log, or a whole
 * replayed request, comes back in full.
 */
export type AppendReply =
  | { replayed: true; events: HeraldEvent[] }
  | { replayed: false; created: boolean[]; seqs: number[]; originals?: Array<HeraldEvent | null> };

export type Reply = { id: number; ok: unknown } | { id: number; error: WireError };

/** Everything the thread posts at once: answers, and the commits and checkpoint failures since its last post. */
export interface Post {
  replies: Reply[];
  /** [requests, seconds] per commit, for the metrics (which live with the caller). */
  commits: Array<[number, number]>;
  checkpointFailures: Array<[WireError, boolean]>;
}

/** An error as it crosses to the other thread: a structured clone would keep neither a HeraldError's class nor a `code`. */
export interface WireError {
  message: string;
  name: string;
  stack?: string | undefined;
  herald?: { code: string; details: unknown } | undefined;
  code?: unknown;
  cause?: WireError | undefined;
}

export function toWire(error: unknown, depth = 0): WireError {
  if (!(error instanceof Error)) return { message: String(error), name: 'Error' };
  const wire: WireError = { message: error.message, name: error.name, stack: error.stack };
  const code = (error as { code?: unknown }).code;
  if (error instanceof HeraldError) wire.herald = { code: error.code, details: error.details };
  else if (typeof code === 'string' || typeof code === 'number') wire.code = code;
  // The disk-full check reads a few causes deep (store/disk-full.ts); no cause chain is longer than that.
  if (error.cause !== undefined && depth < 5) wire.cause = toWire(error.cause, depth + 1);
  return wire;
}

export function fromWire(wire: WireError): Error {
  const error =
    wire.herald && isErrorCode(wire.herald.code) ? new HeraldError(wire.herald.code, wire.message, wire.herald.details) : Object.assign(new Error(wire.message), { name: wire.name });
  if (wire.code !== undefined) Object.assign(error, { code: wire.code });
  if (wire.stack !== undefined) error.stack = wire.stack;
  if (wire.cause) error.cause = fromWire(wire.cause);
  return error;
}
