import type { GapInfo, HeraldEvent } from '@herald/protocol';
import type { EventStore, EventStub, ReadResult, StubPage } from '../../store/types.js';
import { eventJson } from '../../log/event-json.js';

/** Where the merge reads: each channel's stubs to choose by, then the chosen events. */
export type MergeSource = Pick<EventStore, 'read' | 'stubs'>;

/** One event ready to send: its JSON, serialized once and measured for the byte budget. */
export interface TakenEvent {
  event: HeraldEvent;
  json: string;
}

/** Where a reader stands after this page: the last event it got, else where it asked from (past any trim). */
export function nextPosition(page: Pick<ReadResult, 'truncated' | 'trimmed'>, after: number, taken: number | undefined): number {
  if (taken !== undefined) return taken;
  return page.truncated ? page.trimmed : after;
}

/**
 * Takes events in order while they fit `maxBytes` of JSON, always at least
 * one (a single event larger than the budget still goes, alone), so a page of
 * big events is bounded by the budget and never by `limit` × event size.
 */
export class ByteBudget {
  private used = 0;
  constructor(readonly maxBytes: number) {}

  /** The event's JSON, or undefined when it would pass the budget. */
  take(event: HeraldEvent, first: boolean): string | undefined {
    const json = eventJson(event);
    // Bytes, as the answer is sent: a string's length counts UTF-16 units, a third of what CJK text takes.
    const bytes = Buffer.byteLength(json);
    if (!first && this.used + bytes > this.maxBytes) return undefined;
    this.used += bytes;
    return json;
  }
}

/** A channel whose first read found events or a gap: the merge's position in its stubs. */
interface ChannelCursor {
  channel: string;
  after: number;
  /** The first page read: its trim state describes the channel for the answer. */
  first: StubPage;
  /**
   * The channel's head at its latest read. Not the first read's: a page read further on, within the same request, can
   * hold events appended since, and a head behind the events given would not be the head a channel's own page names.
   */
  head: number;
  buffer: EventStub[];
  index: number;
  /** The last read came back short: nothing more to read now. */
  exhausted: boolean;
  /** The seq of the last event taken from this channel. */
  taken: number | undefined;
}

export interface MergedPage {
  taken: TakenEvent[];
  /** Per channel, in request order: where its reader stands now. */
  next: Map<string, number>;
  gaps: GapInfo[];
  /** Per channel: the epoch its events and position belong to. */
  epochs: Record<string, string>;
  /** Per channel: its head when it was read. */
  heads: Record<string, number>;
}

/** Whether a page read after `after` holds the channel's last event. */
function reachedHead(page: StubPage, after: number): boolean {
  return (page.stubs.at(-1)?.seq ?? after) >= page.head;
}

/** A channel's cursor after its first read; none when that read found neither events nor a gap. */
function cursorOf(channel: string, after: number, first: StubPage): ChannelCursor | undefined {
  if (first.stubs.length === 0 && !first.truncated) return undefined;
  return { channel, after, first, head: first.head, buffer: first.stubs, index: 0, exhausted: reachedHead(first, after), taken: undefined };
}

/** The events the merge chose from one channel, in its order: a run of consecutive seqs. */
interface Chosen {
  cursor: ChannelCursor;
  seqs: number[];
  loaded: HeraldEvent[];
  /** How many of `loaded` the page has taken. */
  used: number;
}

/**
 * The multi-channel poll: up to `limit` events across channels, oldest first,
 * always from the front of each channel so every channel's cursor stays exact.
 *
 * It chooses by stubs (seq, time and size; no data), read in small pages (about `limit / channels`) and read again
 * only when a page is used up, so those reads stay within about twice what the answer returns. Then it loads only
 * the events it chose, one read per channel, and takes them in order while they fit the byte budget. Choosing by the
 * events themselves loaded each channel's next one to compare their times: a poll of 100 channels with `limit=1`
 * loaded 100 events to answer with one, 100 MB for a 1 MB answer.
 *
 * A channel whose first read found nothing (the common case, and every channel of a parked long poll) keeps no page
 * and no cursor, only its position and epoch in arrays shared by all channels: a parked poll of 100 channels held a
 * cursor, its empty page and the page's array for each, 18 KB of its 60 KB. Its answer is the same: no events, its
 * position where it asked from, no gap.
 */
export class ChannelMerge {
  private constructor(
    /** In request order, distinct; the arrays below are indexed alike. */
    private readonly channels: readonly string[],
    /** Where each channel's reader asked from. */
    private readonly afters: readonly number[],
    /** The epoch of each channel's latest first read. */
    private readonly epochs: string[],
    /** Undefined for a channel whose first read was empty, without a gap. */
    private readonly cursors: Array<ChannelCursor | undefined>,
    private readonly chunk: number,
    private readonly source: MergeSource,
  ) {}

  /** `channels` distinct, each read after its position in `afters`. */
  static async open(source: MergeSource, channels: readonly string[], afters: readonly number[], limit: number): Promise<ChannelMerge> {
    const chunk = Math.max(1, Math.ceil(limit / channels.length));
    const pages = await Promise.all(channels.map((channel, i) => source.stubs(channel, afters[i]!, chunk)));
    // Built by map, at their exact size: a parked poll holds them for the whole wait.
    const cursors = pages.map((page, i) => cursorOf(channels[i]!, afters[i]!, page));
    return new ChannelMerge(channels, afters, pages.map((page) => page.epoch), cursors, chunk, source);
  }

  /**
   * A long poll's news came on `channel`: only it is read again. Every channel was empty at the first read, and a
   * channel that has had no news since still is, so its page stands. Reading them all again made each parked poll of
   * 100 channels cost 100 reads per wake-up: one publish on a public channel that 8,000 such polls (an anonymous
   * client's, 8 per connection) waited on took 9 s of CPU and 500 MB more to answer, against 1.3 s for one channel.
   * An event that reaches another channel meanwhile is read by the next poll, whose cursor still stands before it.
   */
  async reread(channel: string): Promise<void> {
    const i = this.channels.indexOf(channel);
    if (i < 0) return;
    const first = await this.source.stubs(channel, this.afters[i]!, this.chunk);
    this.epochs[i] = first.epoch;
    this.cursors[i] = cursorOf(channel, this.afters[i]!, first);
  }

  /** Nothing to answer yet: a long poll may wait. */
  get empty(): boolean {
    return this.cursors.every((c) => c === undefined);
  }

  async take(limit: number, budget: ByteBudget): Promise<MergedPage> {
    const order = await this.choose(limit, budget.maxBytes);
    await Promise.all([...new Set(order)].map((chosen) => this.load(chosen)));
    const taken: TakenEvent[] = [];
    for (const chosen of order) {
      const event = chosen.loaded[chosen.used];
      // Trimmed since its stubs were read (or the store began again): stop, and the next poll starts from here.
      if (event === undefined || event.seq !== chosen.seqs[chosen.used]) break;
      const json = budget.take(event, taken.length === 0);
      if (json === undefined) break;
      taken.push({ event, json });
      chosen.used += 1;
      chosen.cursor.taken = event.seq;
    }
    return this.page(taken);
  }

  /**
   * The events to load, in the order they go out: by time, then by channel in request order, up to `limit` and to
   * `maxBytes` of stored data (always at least one), which the JSON of the events then bounds exactly.
   */
  private async choose(limit: number, maxBytes: number): Promise<Chosen[]> {
    const order: Chosen[] = [];
    const byCursor = new Map<ChannelCursor, Chosen>();
    let bytes = 0;
    while (order.length < limit) {
      let pick: ChannelCursor | undefined;
      let pickTime = 0;
      for (const cursor of this.cursors) {
        const candidate = cursor && (await this.peek(cursor));
        if (candidate && (!pick || candidate.time < pickTime)) [pick, pickTime] = [cursor, candidate.time];
      }
      if (!pick) break;
      const stub = pick.buffer[pick.index]!;
      if (order.length > 0 && bytes + stub.bytes > maxBytes) break;
      bytes += stub.bytes;
      pick.index += 1;
      let chosen = byCursor.get(pick);
      if (!chosen) byCursor.set(pick, (chosen = { cursor: pick, seqs: [], loaded: [], used: 0 }));
      chosen.seqs.push(stub.seq);
      order.push(chosen);
    }
    return order;
  }

  /** The chosen events of one channel, in one read: its seqs are consecutive. */
  private async load(chosen: Chosen): Promise<void> {
    const { cursor, seqs } = chosen;
    const page = await this.source.read(cursor.channel, seqs[0]! - 1, seqs.length);
    if (page.epoch === cursor.first.epoch) chosen.loaded = page.events;
  }

  private page(taken: TakenEvent[]): MergedPage {
    const next = new Map<string, number>();
    const gaps: GapInfo[] = [];
    const epochs: Record<string, string> = {};
    const heads: Record<string, number> = {};
    for (const [i, channel] of this.channels.entries()) {
      const c = this.cursors[i];
      epochs[channel] = this.epochs[i]!;
      // A read that found neither events nor a gap stood at the head: past it is a gap, before it an event.
      heads[channel] = c ? c.head : this.afters[i]!;
      next.set(channel, c ? nextPosition(c.first, c.after, c.taken) : this.afters[i]!);
      if (c?.first.truncated) gaps.push({ channel, after: c.after, oldest: c.first.trimmed + 1 });
    }
    return { taken, next, gaps, epochs, heads };
  }

  /** The channel's next stub, reading its next small page when the buffered one is used up. */
  private async peek(cursor: ChannelCursor): Promise<EventStub | undefined> {
    if (cursor.index < cursor.buffer.length) return cursor.buffer[cursor.index];
    if (cursor.exhausted || cursor.buffer.length === 0) return undefined;
    const after = cursor.buffer.at(-1)!.seq;
    const page = await this.source.stubs(cursor.channel, after, this.chunk);
    cursor.head = Math.max(cursor.head, page.head);
    if (page.truncated) {
      // Trimmed under us: stop here, and the next poll reports the gap from this position.
      cursor.exhausted = true;
      return undefined;
    }
    cursor.exhausted = reachedHead(page, after);
    cursor.buffer = page.stubs;
    cursor.index = 0;
    return cursor.buffer[0];
  }
}
