import type { HeraldEvent } from '@herald/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { EventLog } from '../log/event-log.js';
import { eventJson } from '../log/event-json.js';
import type { DeliveryStore, EndpointRecord, NewDelivery, SettingsStore } from '../store/types.js';
import { keptFromTenant, matchesAny } from '../auth/patterns.js';
import { Counts } from '../util/counts.js';
import { FailureStreak } from '../util/failure-streak.js';

const PAGE = 500;
/** Bytes of events (data and meta) per page read while catching up from the log, whatever the size of the events. */
const PAGE_BYTES = 1024 * 1024;
/** How often cursors that moved without creating deliveries are written. */
const CURSOR_SAVE_MS = 1000;
/** How often the endpoint set is re-read, for endpoints created or changed through another node. */
const ENDPOINT_REFRESH_MS = 2000;

const backfillKey = (endpointId: string, channel: string) => `${endpointId}\n${channel}`;
/**
 * Setting: the ids of the endpoints whose deliveries have been derived from everything up to the cursors (their
 * backfills done). An endpoint missing from it when a dispatcher starts was created while the last one could
 * not finish its backfill (it died first), so the new one runs it.
 */
export const SEEN_ENDPOINTS_SETTING = 'dispatcher.endpoints';
const BACKFILL_RETRY_MS = 1000;
/** Channels caught up at once when the dispatcher starts: each page is done before the next is read. */
const START_PAGE = 500;
/** Channels a sweep for new endpoints owes backfills on at once (see Dispatcher.sweep). */
const SWEEP_PAGE = 500;

/** Endpoints new to a dispatcher, owed a backfill on every channel they match: see Dispatcher.sweep. */
interface Sweep {
  /** Their ids: each page matches channels with the endpoints as they are then (changed or deleted meanwhile). */
  readonly ids: ReadonlySet<string>;
  /** The last channel (in byte order of names) whose backfills are owed the usual way; undefined before the first. */
  sweptTo: string | undefined;
  /**
   * Backfill keys owed ahead of the sweep by a live event (see `owesOrdered`): owed once, then that channel's events
   * are delivered live, and the sweep does not owe it again. Only channels written while the sweep runs.
   */
  readonly owedAhead: Set<string>;
}
/**
 * Channels whose cursors stay in memory (`delivery.cursorCache`). Every channel ever written has a cursor, and any
 * key that may publish to a wildcard can write new channels, so memory holds the most recently used ones and the
 * rest are read back from the store when their channel is written again (a saved cursor is the truth for a channel
 * not in memory).
 */
const DEFAULT_MAX_CACHED_CURSORS = 10_000;

/** `eventTime` is the event's time in ms, parsed once by the caller for all endpoints. */
function endpointWants(endpoint: EndpointRecord, event: HeraldEvent, eventTime: number): boolean {
  return (
    // An endpoint receives what happened after it was registered, not the history before.
    eventTime >= endpoint.createdAt &&
    // A tenant's endpoint never gets Herald's own channels, whatever its patterns (`*`, say): herald:system names
    // every tenant's endpoints and their URLs.
    !keptFromTenant(endpoint, event.channel) &&
    matchesAny(endpoint.channels, event.channel) &&
    (endpoint.types.length === 0 || matchesAny(endpoint.types, event.type))
  );
}

/**
 * Turns the log into deliveries. It follows every channel from its own
 * durable cursor, so deliveries are derived from the log rather than from a
 * notification: after a crash it reads on from the cursor and recreates what
 * was missed (the store ignores a delivery that already exists).
 */
export class Dispatcher {
  /** In memory: the most recently used channels' cursors, least recent first; see DEFAULT_MAX_CACHED_CURSORS. */
  private readonly cursors = new Map<string, number>();
  /** While > 0, no cursor leaves memory: a page of the start's catch-up runs from saved cursors it read (see catchUpAll). */
  private evictionHolds = 0;
  /** Per channel, the cursor saves under way that write it: its cursor stays in memory until they are done. */
  private readonly beingSaved = new Counts<string>();
  /** Per channel, how many backfills are owed there (the values of `owedBackfills`, counted). */
  private readonly owedChannels = new Counts<string>();
  private endpoints: EndpointRecord[] = [];
  /** One chain per channel keeps each channel's deliveries in order without blocking the others. */
  private readonly chains = new Map<string, Promise<void>>();
  /** The catch-up of every channel that `start` began, a page at a time. */
  private startCatchUp: Promise<void> = Promise.resolve();
  /** Sweeps owing new endpoints their backfills, the one running first; see `sweep`. */
  private readonly sweeps = new Set<Sweep>();
  private sweeping: Promise<void> = Promise.resolve();
  /** Per owed backfill key, who waits for it to be written (a sweep's page); all woken by `stop`. */
  private readonly backfillWaiters = new Map<string, Array<() => void>>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  /** Channels whose cursor moved past events no endpoint wanted, not yet written. */
  private readonly unsaved = new Set<string>();
  private saveTimer: ReturnType<typeof setInterval> | undefined;
  private refreshTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * Every backfill queued and not yet done, `endpoint id + channel` → channel: those channels' cursors are not saved
   * meanwhile, and live events of the channel create no delivery for an ordered endpoint owed one until it has run
   * (it covers them too), so none is created before an older event's. Channels a sweep has not reached yet are
   * treated the same way without a key (see `sweep`).
   */
  private readonly owedBackfills = new Map<string, string>();
  /** The cursor writes under way, chained. */
  private saving: Promise<void> = Promise.resolve();
  /** Per endpoint id, how many of its backfills are owed: it is recorded as seen only at 0. */
  private readonly owedPerEndpoint = new Counts<string>();
  /** The last SEEN_ENDPOINTS_SETTING value written or read, and the write under way. */
  private seenWritten = '';
  private seenWriting: Promise<void> = Promise.resolve();
  /** Set once `start` has read the endpoints and the record: a reload before then would see neither. */
  private started = false;
  private finished = false;
  private reloadWanted = false;
  private reloading: Promise<void> = Promise.resolve();
  /** Both run every second or two, so a store outage fails each run: each is logged as one streak. */
  private readonly cursorSaves: FailureStreak;
  private readonly reloads: FailureStreak;

  constructor(
    private readonly log: EventLog,
    private readonly store: DeliveryStore,
    private readonly logger: FastifyBaseLogger,
    private readonly onCreated: () => void,
    private readonly settings: SettingsStore,
    private readonly maxCachedCursors = DEFAULT_MAX_CACHED_CURSORS,
  ) {
    this.cursorSaves = new FailureStreak(logger, 'saving delivery cursors', 'error');
    this.reloads = new FailureStreak(logger, 'reloading endpoints', 'error');
  }

  async start(): Promise<void> {
    this.endpoints = await this.store.listEndpoints();
    const seenRaw = await this.settings.get(SEEN_ENDPOINTS_SETTING);
    const seen = this.parseSeen(seenRaw);
    this.seenWritten = seenRaw ?? '';
    this.unsubscribe = this.log.bus.subscribeAll(
      (events) => this.onLive(events),
      (channel) => this.position(channel),
    );
    // Endpoints the last dispatcher did not finish backfilling (it died first). Owed before the catch-up begins: an
    // ordered endpoint's older deliveries must exist before the catch-up creates newer ones.
    this.sweep(this.endpoints.filter((e) => !seen.has(e.id)));
    this.startCatchUp = this.catchUpAll();
    this.started = true;
    this.recordSeen();
    if (this.reloadWanted) void this.reloadEndpoints().catch(this.reloads.onError);
    this.saveTimer = setInterval(() => {
      this.evictCursors();
      void this.saveCursors();
    }, CURSOR_SAVE_MS);
    this.saveTimer.unref();
    this.refreshTimer = setInterval(() => {
      this.reloadEndpoints().catch(this.reloads.onError);
    }, ENDPOINT_REFRESH_MS);
    this.refreshTimer.unref();
  }

  /**
   * Every channel in the log, a page of `size` at a time in byte order of names, each handed to `visit` and done
   * before the next page is read, so the work under way at once stays one page's however many channels there are.
   * A page that cannot be read, or that `visit` fails on, is tried again after a pause. Ends after the last page or
   * when `visit` says false (true), or when the dispatcher stops (false).
   */
  private async eachChannelPage(size: number, what: string, visit: (page: string[]) => Promise<boolean | void>): Promise<boolean> {
    let after: string | undefined;
    for (;;) {
      if (this.stopped) return false;
      let page: string[];
      try {
        page = await this.log.store.channels({ after, limit: size });
        if ((await visit(page)) === false) return true;
      } catch (err) {
        this.logger.error({ err }, `${what} failed; trying again`);
        await new Promise((r) => setTimeout(r, BACKFILL_RETRY_MS).unref());
        continue;
      }
      if (page.length < size) return true;
      after = page.at(-1);
    }
  }

  /**
   * The catch-up of every channel, in the background, a page at a time with the page's saved cursors (one read per
   * page); each page's cursors are saved, and free to leave memory, before the next. No cursor leaves memory while a
   * page runs: a cursor read for the page must not overwrite a newer one saved meanwhile.
   */
  private async catchUpAll(): Promise<void> {
    await this.eachChannelPage(START_PAGE, 'reading channels to catch up', async (page) => {
      this.evictionHolds += 1;
      try {
        const saved = await this.store.cursorsOf(page);
        // Each channel from its saved cursor, when none is in memory.
        await Promise.all(
          page.map((channel) =>
            this.enqueue(channel, [], () => {
              const cursor = saved.get(channel);
              if (cursor !== undefined && !this.cursors.has(channel)) this.cursors.set(channel, cursor);
              return this.advance(channel, []);
            }),
          ),
        );
      } finally {
        this.evictionHolds -= 1;
      }
      await this.saveCursors();
      this.evictCursors();
    });
  }

  /**
   * Writes cursors that moved without creating deliveries, all in one write. Their writes can wait: a stale
   * cursor only makes the dispatcher look at those events again after a crash, and it skips them again (or the
   * store ignores the delivery that already exists). A cursor in the map never runs ahead of deliveries still
   * being created: it moves only once they are written. A channel with a backfill still owed keeps its saved
   * cursor where it was until the backfill is done, as it did when saves queued behind it.
   */
  private saveCursors(): Promise<void> {
    const cursors = new Map<string, number>();
    for (const channel of this.unsaved) {
      if (this.owedChannels.has(channel)) continue;
      cursors.set(channel, this.cursors.get(channel) ?? 0);
      this.unsaved.delete(channel);
      this.beingSaved.add(channel);
    }
    if (cursors.size === 0) return this.saving;
    // One save after another, so `stop` waits for every one by waiting for the last.
    this.saving = this.saving
      .then(() => this.store.saveCursors(cursors))
      .then(
        () => this.cursorSaves.succeeded(),
        (err: unknown) => {
          for (const channel of cursors.keys()) this.unsaved.add(channel);
          this.cursorSaves.failed(err);
        },
      )
      .finally(() => {
        for (const channel of cursors.keys()) this.beingSaved.release(channel);
      });
    return this.saving;
  }

  /**
   * Drops the least recently used cursors past the bound. Only those the store holds as they are: not moved since
   * they were last saved, nor being saved now; with no work queued on their channel (which reads and moves the
   * cursor) and no backfill owed there.
   */
  private evictCursors(): void {
    if (this.cursors.size <= this.maxCachedCursors || this.evictionHolds > 0) return;
    for (const channel of this.cursors.keys()) {
      if (this.cursors.size <= this.maxCachedCursors) break;
      if (this.unsaved.has(channel) || this.beingSaved.has(channel) || this.chains.has(channel) || this.owedChannels.has(channel)) continue;
      this.cursors.delete(channel);
    }
  }

  /** How many channels' cursors are in memory now (for tests and diagnostics). */
  get cachedCursors(): number {
    return this.cursors.size;
  }

  /**
   * Moves the channel's cursor and makes it the most recently used. Under the bound nothing is evicted, so the order
   * does not matter yet: the live path (every event) then skips the delete that moves an entry to the end.
   */
  private setCursor(channel: string, seq: number): void {
    if (this.cursors.size >= this.maxCachedCursors) this.cursors.delete(channel);
    this.cursors.set(channel, seq);
  }

  /**
   * The channel's cursor, read back from the store if it left memory. Only work queued on the channel calls this,
   * and only such work moves a cursor that is not in memory, so nothing moves it while the store is read.
   */
  private async cursorOf(channel: string): Promise<number> {
    let cursor = this.cursors.get(channel);
    if (cursor === undefined) {
      cursor = (await this.store.cursor(channel)) ?? 0;
      this.setCursor(channel, cursor);
    }
    return cursor;
  }

  /**
   * Where the dispatcher stands in a channel, for the bus (which forgets channels it has not seen lately): the cursor
   * once the work queued on the channel is done, so every event handed on before is counted. Queued itself, so nothing
   * moves the cursor while it is read. One read back from the store is not kept in memory: a whole-log pass of the bus
   * asks this of every channel. A failure goes to the caller (the bus runs its pass again), not to the log here.
   */
  private position(channel: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.enqueue(channel, [], async () => {
        try {
          resolve(this.cursors.get(channel) ?? (await this.store.cursor(channel)) ?? 0);
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /**
   * New events from the bus. Those that follow the channel's cursor and that no endpoint wants (a channel no
   * endpoint follows, the common case) only move the cursor, here and now: no promise, no write until the
   * next save. Anything else queues behind the channel's earlier work.
   */
  private onLive(events: readonly HeraldEvent[]): void {
    const channel = events[0]!.channel;
    // A channel whose cursor is not in memory takes the queue, where its cursor is read back from the store (even for
    // seq 1: a late copy of a channel's first event must not take an evicted cursor back to 1).
    const cursor = this.cursors.get(channel);
    if (this.stopped || cursor === undefined || this.chains.has(channel) || events[0]!.seq !== cursor + 1 || this.anyWanted(events)) {
      this.enqueue(channel, events);
      return;
    }
    this.setCursor(channel, events.at(-1)!.seq);
    this.unsaved.add(channel);
  }

  private anyWanted(events: readonly HeraldEvent[]): boolean {
    if (this.endpoints.length === 0) return false;
    return events.some((event) => {
      const eventTime = Date.parse(event.time);
      return this.endpoints.some((endpoint) => endpointWants(endpoint, event, eventTime));
    });
  }

  /**
   * Called after any endpoint change, so matching uses the current set. An
   * endpoint created through another node may be seen here a moment after
   * events it wants have gone past the cursors: those are backfilled.
   */
  async reloadEndpoints(): Promise<void> {
    if (this.stopped) return;
    if (!this.started) {
      // `start` reads the endpoints itself, and reloads once more when it is done.
      this.reloadWanted = true;
      return;
    }
    const reload = this.reloading.then(async () => {
      const known = new Set(this.endpoints.map((e) => e.id));
      const endpoints = await this.store.listEndpoints();
      this.reloads.succeeded();
      const fresh = endpoints.filter((e) => !known.has(e.id));
      if (this.stopped) return;
      // Owed from the moment they take effect, so no live event creates their deliveries before their backfills.
      this.endpoints = endpoints;
      this.sweep(fresh);
      this.recordSeen();
    });
    // One reload at a time, so an older list never replaces a newer one; `stop` waits for the last.
    this.reloading = reload.catch(() => {});
    await reload;
  }

  /**
   * The record of a previous dispatcher. Absent (the first start of a version that keeps it) or unreadable, it
   * says nothing is owed: that is how things stood before the record existed, and backfilling every endpoint
   * from its creation could be all of the log.
   */
  private parseSeen(raw: string | undefined): Set<string> {
    const all = () => new Set(this.endpoints.map((e) => e.id));
    if (raw === undefined) return all();
    try {
      const ids: unknown = JSON.parse(raw);
      if (Array.isArray(ids) && ids.every((id) => typeof id === 'string')) return new Set(ids);
    } catch {
      // reported below
    }
    this.logger.error({ value: raw.slice(0, 200) }, `the ${SEEN_ENDPOINTS_SETTING} setting is not a list of endpoint ids; taking every endpoint as backfilled`);
    return all();
  }

  /**
   * Owes `endpoints` (new to this dispatcher) a backfill on every channel they match. The channels are visited a page
   * at a time in byte order of their names, each page's backfills queued, and run, before the next page is read, so
   * the work owed at once stays the same however many channels the log holds. On a channel the sweep has not reached
   * yet, the first live event that an ordered endpoint of the sweep wants owes the backfill there and then (see
   * `owesOrdered`), so its delivery waits for the older ones, and a channel the listing never shows (created
   * meanwhile) is owed too. Registered before this returns, so it holds from the moment the endpoints take effect.
   * Sweeps run one after another.
   */
  private sweep(endpoints: readonly EndpointRecord[]): void {
    if (endpoints.length === 0) return;
    const sweep: Sweep = { ids: new Set(endpoints.map((e) => e.id)), sweptTo: undefined, owedAhead: new Set() };
    this.sweeps.add(sweep);
    this.sweeping = this.sweeping
      .then(() => this.runSweep(sweep))
      .catch((err: unknown) => this.logger.error({ err }, 'backfilling new endpoints failed; the next dispatcher runs it again'));
  }

  private async runSweep(sweep: Sweep): Promise<void> {
    const ended = await this.eachChannelPage(SWEEP_PAGE, 'listing channels to backfill new endpoints', async (page) => {
      const endpoints = this.endpoints.filter((e) => sweep.ids.has(e.id));
      // All deleted: nothing more is owed to them.
      if (endpoints.length === 0) return false;
      const keys: string[] = [];
      for (const channel of page) {
        for (const endpoint of endpoints) {
          if (!matchesAny(endpoint.channels, channel)) continue;
          const key = backfillKey(endpoint.id, channel);
          // Owed already, by a live event ahead of the sweep.
          if (sweep.owedAhead.delete(key)) continue;
          this.oweBackfill(endpoint, channel);
          keys.push(key);
        }
      }
      // In the same turn as the backfills were owed: no channel is ever owed neither way.
      if (page.length > 0) sweep.sweptTo = page.at(-1);
      // Written (retried until they are) before the next page: the backfills owed at once stay one page's.
      await Promise.all(keys.map((key) => this.backfillWritten(key)));
    });
    // Cut short by `stop`: its endpoints are not recorded as seen, and the next dispatcher sweeps them again.
    if (!ended) return;
    this.sweeps.delete(sweep);
    this.recordSeen();
  }

  /** The sweep that owes the endpoint backfills and has yet to reach `channel` (one it matches), if any. */
  private sweepAhead(endpoint: EndpointRecord, channel: string): Sweep | undefined {
    for (const sweep of this.sweeps) {
      if (!sweep.ids.has(endpoint.id) || (sweep.sweptTo !== undefined && channel <= sweep.sweptTo)) continue;
      if (matchesAny(endpoint.channels, channel)) return sweep;
    }
    return undefined;
  }

  /** Resolves once the backfill is written (or was never owed), or `stop` cut it short. */
  private backfillWritten(key: string): Promise<void> {
    if (!this.owedBackfills.has(key) || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.backfillWaiters.get(key);
      if (waiters) waiters.push(resolve);
      else this.backfillWaiters.set(key, [resolve]);
    });
  }

  private wakeBackfillWaiters(key?: string): void {
    const keys = key === undefined ? [...this.backfillWaiters.keys()] : [key];
    for (const k of keys) {
      for (const wake of this.backfillWaiters.get(k) ?? []) wake();
      this.backfillWaiters.delete(k);
    }
  }

  /** Owes the endpoint a backfill on the channel, unless one is owed there already. */
  private oweBackfill(endpoint: EndpointRecord, channel: string): void {
    const key = backfillKey(endpoint.id, channel);
    if (this.owedBackfills.has(key)) return;
    this.owedChannels.add(channel);
    this.owedBackfills.set(key, channel);
    this.owedPerEndpoint.add(endpoint.id);
    this.enqueueBackfill(channel, endpoint, key);
  }

  /**
   * A backfill that fails (a store error) is queued again until it succeeds: nothing else would create those
   * deliveries, and an ordered endpoint's live events of the channel wait for it (the key stays until then).
   */
  private enqueueBackfill(channel: string, endpoint: EndpointRecord, key: string): void {
    this.enqueue(channel, [], async () => {
      if (!this.endpoints.some((e) => e.id === endpoint.id)) {
        this.settleBackfill(key); // deleted meanwhile: nothing is owed to it
        return;
      }
      try {
        // Cut short by `stop`, it wrote nothing and stays owed: the next dispatcher runs it whole.
        if (await this.backfill(channel, endpoint)) this.settleBackfill(key);
      } catch (err) {
        this.logger.error({ err, channel, endpoint: endpoint.id }, 'backfilling deliveries for a new endpoint failed; trying again');
        if (this.stopped) return;
        const retry = setTimeout(() => !this.stopped && this.enqueueBackfill(channel, endpoint, key), BACKFILL_RETRY_MS);
        retry.unref();
      }
    });
  }

  private settleBackfill(key: string): void {
    const channel = this.owedBackfills.get(key);
    if (channel === undefined) return;
    this.owedBackfills.delete(key);
    this.wakeBackfillWaiters(key);
    this.owedChannels.release(channel);
    if (this.owedPerEndpoint.release(key.slice(0, key.indexOf('\n'))) > 0) return;
    this.recordSeen();
  }

  /**
   * Writes SEEN_ENDPOINTS_SETTING when it changed: the current endpoints, less those with a backfill still owed.
   * A failed write is only a backfill run again by the next dispatcher (the store ignores what already exists).
   */
  private recordSeen(): void {
    // Not before `start` has read the record, and not once `stop` is done: what `stop` waits for (backfills
    // finishing) may still be recorded, nothing after it.
    if (!this.started || this.finished) return;
    const sweeping = new Set([...this.sweeps].flatMap((sweep) => [...sweep.ids]));
    const value = JSON.stringify(this.endpoints.map((e) => e.id).filter((id) => !this.owedPerEndpoint.has(id) && !sweeping.has(id)));
    if (value === this.seenWritten) return;
    this.seenWritten = value;
    this.seenWriting = this.seenWriting
      .then(() => this.settings.set(SEEN_ENDPOINTS_SETTING, value))
      .catch((err: unknown) => {
        if (this.seenWritten === value) this.seenWritten = ''; // written again at the next change
        this.logger.error({ err }, 'recording the endpoints the dispatcher has seen failed');
      });
  }

  /**
   * Deliveries for `endpoint` of the events at or before the channel's cursor
   * that happened after the endpoint was created, read backwards a page at a
   * time until older events, then created in one write, oldest first, so an
   * ordered endpoint never has a later event's delivery before an earlier
   * one's. The window runs from the endpoint's creation to its backfill on the channel: seconds for an endpoint
   * created through another node on a channel written meanwhile, longer where a sweep reaches the channel late. The
   * store ignores deliveries that already exist. Resolves false,
   * having written nothing, when `stop` cut it short.
   */
  private async backfill(channel: string, endpoint: EndpointRecord): Promise<boolean> {
    let end = await this.cursorOf(channel);
    const pages: NewDelivery[][] = [];
    while (end > 0 && !this.stopped) {
      const from = Math.max(0, end - PAGE);
      const page = await this.log.read(channel, from, end - from);
      const now = Date.now();
      const deliveries: NewDelivery[] = [];
      pages.unshift(deliveries);
      let older = false;
      for (const event of page.events) {
        if (event.seq > end) break;
        const eventTime = Date.parse(event.time);
        if (eventTime < endpoint.createdAt) older = true;
        else if (endpointWants(endpoint, event, eventTime)) {
          deliveries.push({ endpointId: endpoint.id, eventId: event.id, channel, seq: event.seq, payload: eventJson(event), createdAt: now });
        }
      }
      if (older || page.events.length === 0 || page.truncated) break;
      end = from;
    }
    // Only the newest pages, for an ordered endpoint, would be later events' deliveries before earlier ones'.
    if (this.stopped) return false;
    const deliveries = pages.flat();
    if (deliveries.length > 0) {
      await this.store.createDeliveries(channel, this.cursors.get(channel) ?? 0, deliveries);
      this.onCreated();
    }
    return true;
  }

  /** Queues work behind the channel's earlier work; resolves when it is done (its failure logged here). */
  private enqueue(channel: string, events: readonly HeraldEvent[], task?: () => Promise<void>): Promise<void> {
    const previous = this.chains.get(channel) ?? Promise.resolve();
    const next = previous
      .then(() => (task ? task() : this.advance(channel, events)))
      .catch((err: unknown) => this.logger.error({ err, channel }, 'creating deliveries failed; will retry from the log'));
    this.chains.set(channel, next);
    void next.finally(() => {
      if (this.chains.get(channel) === next) this.chains.delete(channel);
    });
    return next;
  }

  /** Creates deliveries for everything after the channel's cursor: from the bus when it follows on, else from the log. */
  private async advance(channel: string, live: readonly HeraldEvent[]): Promise<void> {
    if (this.stopped) return;
    let cursor = await this.cursorOf(channel);
    if (live.length > 0 && live[0]!.seq <= cursor + 1 && live.at(-1)!.seq > cursor) {
      await this.create(channel, live.filter((e) => e.seq > cursor));
      return;
    }
    if (live.length > 0 && live.at(-1)!.seq <= cursor) return;
    for (;;) {
      const page = await this.log.read(channel, cursor, PAGE, PAGE_BYTES);
      if (page.events.length === 0) {
        if (page.head > cursor) await this.create(channel, [], page.head);
        return;
      }
      await this.create(channel, page.events);
      cursor = page.events.at(-1)!.seq;
      if (cursor >= page.head || this.stopped) return;
    }
  }

  /**
   * Whether new events of the channel must wait for a backfill of this (ordered) endpoint. A channel a sweep has yet
   * to reach is owed its backfill here and now (queued behind this work, on the channel's chain): the event's
   * delivery then comes after the older ones, even on a channel the sweep's listing will never show.
   */
  private owesOrdered(endpoint: EndpointRecord, channel: string): boolean {
    if (this.owedBackfills.size === 0 && this.sweeps.size === 0) return false;
    const key = backfillKey(endpoint.id, channel);
    if (this.owedBackfills.has(key)) return true;
    const sweep = this.sweepAhead(endpoint, channel);
    // Owed here before, and written: its events are delivered live from then on.
    if (!sweep || sweep.owedAhead.has(key)) return false;
    sweep.owedAhead.add(key);
    this.oweBackfill(endpoint, channel);
    return true;
  }

  private async create(channel: string, events: readonly HeraldEvent[], headSeq?: number): Promise<void> {
    const deliveries: NewDelivery[] = [];
    const now = Date.now();
    for (const event of events) {
      let payload: string | undefined;
      const eventTime = Date.parse(event.time);
      for (const endpoint of this.endpoints) {
        if (!endpointWants(endpoint, event, eventTime)) continue;
        if (endpoint.ordering === 'channel' && this.owesOrdered(endpoint, channel)) continue;
        payload ??= eventJson(event);
        deliveries.push({ endpointId: endpoint.id, eventId: event.id, channel, seq: event.seq, payload, createdAt: now });
      }
    }
    const seq = events.at(-1)?.seq ?? headSeq!;
    if (deliveries.length > 0) {
      await this.store.createDeliveries(channel, seq, deliveries);
      this.unsaved.delete(channel);
    } else {
      this.unsaved.add(channel);
    }
    this.setCursor(channel, Math.max(seq, this.cursors.get(channel) ?? 0));
    if (deliveries.length > 0) this.onCreated();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.saveTimer);
    clearInterval(this.refreshTimer);
    this.stopped = true;
    // A sweep waiting for backfills that `stop` cuts short (they stay owed, for the next dispatcher) goes on to end.
    this.wakeBackfillWaiters();
    await this.reloading;
    await this.sweeping;
    await this.startCatchUp;
    await Promise.all([...this.chains.values()]);
    // A save the timer started may still be writing: wait for it, then write what moved since.
    await this.saving;
    await this.saveCursors();
    await this.seenWriting;
    this.finished = true;
  }
}
