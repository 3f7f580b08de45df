import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isIP } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import type { FastifyBaseLogger } from 'fastify';
import { sign, type Scheme } from '@herald/webhooks';
import { schemeHeaders, webhookIdOf } from './webhook-id.js';
import type { HeraldConfig } from '../config/schema.js';
import type { EventLog } from '../log/event-log.js';
import type { AttemptOutcome, DeliveryRecord, DeliveryStore, DueCursor, EndpointRecord } from '../store/types.js';
import { HeraldError } from '@herald/protocol';
import { isDiskFull } from '../store/disk-full.js';
import { judge, nextAttemptAt } from './outcome.js';
import { TokenBucket } from '../util/token-bucket.js';
import { LogBudget } from '../util/log-budget.js';
import { FailureStreak } from '../util/failure-streak.js';
import { CircuitBreaker, type Admission, type Transition } from './circuit-breaker.js';
import { liveSecrets } from '../auth/rotation.js';
import type { UrlGuard } from './ssrf.js';
import { recordAttempt as recordAttemptMetrics } from '../metrics/index.js';
import { deliveryAttemptSpan } from '../tracing/index.js';

export const SYSTEM_CHANNEL = 'herald:system';
const RESPONSE_KEPT = 1024;
/** Past this much response body the connection is dropped rather than read to the end. */
const RESPONSE_READ_MAX = 64 * 1024;
/** The pump runs at least this often, so a delivery never waits on a lost timer. */
const IDLE_TICK_MS = 1000;
/** How long a delivery whose attempt threw stays out of the queue (see launch). */
const FAILED_ATTEMPT_PAUSE_MS = 1000;
/** Waits between writes of an attempt's outcome that the store refused (see recordOutcome): doubling, within these. */
const OUTCOME_RETRY_MS = { first: 500, max: 10_000 };
/**
 * At a graceful stop, how long attempts in flight get to be answered and their outcomes written. Abandoned at once,
 * each was sent again after the restart, though its receiver had answered: a rolling deploy re-sent the deliveries in
 * flight at every node it stopped (39 duplicates in 6 restarts against a receiver answering in up to 200 ms).
 */
const STOP_GRACE_MS = 5000;

/** The store refuses writes for now (the disk full, PostgreSQL unreachable): the same write may succeed later. */
const refusedForNow = (error: unknown): boolean => isDiskFull(error) || (error instanceof HeraldError && error.code === 'store_unavailable');

/** The first KiB of a response body for the attempt log; reads no more than RESPONSE_READ_MAX. */
async function readStart(body: Dispatcher.ResponseData['body'], contentLength: string | string[] | undefined): Promise<string> {
  const length = typeof contentLength === 'string' ? Number(contentLength) : NaN;
  if (length <= RESPONSE_READ_MAX) return (await body.text()).slice(0, RESPONSE_KEPT);
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let read = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    read += chunk.length;
    if (keptBytes < RESPONSE_KEPT) {
      kept.push(chunk.subarray(0, RESPONSE_KEPT - keptBytes));
      keptBytes += Math.min(chunk.length, RESPONSE_KEPT - keptBytes);
    }
    if (read > RESPONSE_READ_MAX) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(kept).toString('utf8').slice(0, RESPONSE_KEPT);
}

interface Sent {
  statusCode?: number;
  retryAfter?: string;
  responseBody?: string;
  error?: string;
  durationMs: number;
}

/**
 * Sends due deliveries. Each endpoint has its own concurrency and rate limit,
 * and the pump asks the store for each endpoint's due work separately, so a
 * slow or dead endpoint only ever holds its own slots: no head-of-line
 * blocking, and memory is bounded by the slots, not by the backlog.
 */
/** One endpoint's work in memory: a short prefetched queue and what is under way. Bounded by its concurrency. */
interface Lane {
  queue: DeliveryRecord[];
  /** Requests on the wire: these hold the endpoint's concurrency slots. */
  flying: Set<string>;
  /** Answered, with the outcome not yet committed: still pending in the store, so never fetched again meanwhile. */
  settling: Set<string>;
  bucket: TokenBucket | undefined;
  /** The rate the bucket was made for; a changed endpoint rate makes a new bucket. */
  rate: number | undefined;
  /** Where the last refill stopped, so the next one reads only rows after it. */
  cursor: DueCursor | undefined;
  breaker: CircuitBreaker;
  /** While the circuit is open: what it opened on (targetOf), so that an edit made through any node closes it. */
  openedOn: string | undefined;
  /** Test events asked for on this node: sent even while the circuit is open. */
  bypass: Set<string>;
}

/** What an endpoint's answers depend on: an edit of any of it may be the fix of a failing endpoint. */
function targetOf(endpoint: EndpointRecord): string {
  return JSON.stringify([endpoint.url, endpoint.scheme, endpoint.headers, endpoint.secrets[0]?.secret]);
}

/** One SSRF guard and the connection pool whose DNS answers it checks. */
interface Route {
  guard: UrlGuard;
  agent: Agent;
}

/** Whether this node sends an endpoint's deliveries now; in a cluster, the holder of its lease. */
export interface EndpointOwnership {
  owns(endpointId: string, enabledEndpoints: number): Promise<boolean>;
  /** The endpoint was deleted or disabled, and nothing of its is under way here: whatever this node held for it goes. */
  forget?(endpointId: string): void;
}

export class DeliveryWorker {
  /** The admin's endpoints: `delivery.allowPrivateNetworks`. */
  private readonly platform: Route;
  /**
   * Endpoints that belong to a tenant: `portal.allowPrivateNetworks` only, at every connection too, because a tenant
   * reads its endpoints' response snippets and could otherwise point a name at the platform's network (DNS rebinding).
   */
  private readonly tenants: Route;
  /** The endpoint list, read at most once per idle tick (and again after a local change), not on every pump. */
  private endpoints: { list: EndpointRecord[]; readAt: number } | undefined;
  private readonly lanes = new Map<string, Lane>();
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  /** Attempts under way, so stop() can wait for them to settle before the store closes. */
  private readonly attempts = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly userAgent: string;
  private readonly pumpFailures: FailureStreak;
  /** Circuit lines: when Herald's own network fails, every endpoint's circuit opens at once. */
  private readonly circuitLog = new LogBudget(5);
  /** Outcomes of attempts made that the store has refused so far (see recordOutcome): while any waits, none starts. */
  private unrecorded = 0;
  /** One line a minute while the store refuses outcomes, with the count of refusals left out. */
  private readonly outcomeLog = new LogBudget(1 / 60);
  /** Aborted at stop: cuts short the waits of outcomes being written again. */
  private readonly stopping = new AbortController();
  /** Set once a stop's grace is over: an attempt answered after it records nothing (see stop). */
  private abandoned = false;

  constructor(
    private readonly config: HeraldConfig['delivery'],
    private readonly store: DeliveryStore,
    private readonly log: EventLog,
    guard: UrlGuard,
    private readonly logger: FastifyBaseLogger,
    version: string,
    private readonly ownership: EndpointOwnership,
    tenantGuard: UrlGuard = guard,
  ) {
    this.userAgent = `Herald/${version}`;
    // The pump runs every idle tick, so a store outage fails it every second or so: one line per streak.
    this.pumpFailures = new FailureStreak(logger, 'delivery pump', 'error');
    // One keep-alive pool per origin (undici's Agent), and the SSRF guard on every connection's DNS answer.
    const route = (g: UrlGuard): Route => ({
      guard: g,
      agent: new Agent({ connect: { lookup: g.lookup, timeout: config.timeout * 1000 }, keepAliveTimeout: 30_000 }),
    });
    this.platform = route(guard);
    this.tenants = tenantGuard === guard ? this.platform : route(tenantGuard);
  }

  start(): void {
    this.kick();
  }

  /** Asks for a pump soon; calls made while one runs fold into one more run. */
  kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = new Promise((resolve) => setImmediate(() => void this.pump().finally(resolve)));
  }

  private async pump(): Promise<void> {
    let wake: number | undefined;
    try {
      do {
        this.pumpAgain = false;
        wake = await this.pumpOnce();
      } while (this.pumpAgain && !this.stopped);
      this.pumpFailures.succeeded();
    } catch (err) {
      // A store read failed (PostgreSQL restarting, say). The timer is armed all the same, for the idle tick: the pass
      // that failed was often the timer's own, and without another nothing ran again until a new event or an edit,
      // so retries and an open circuit's probes waited however long that took.
      wake = undefined;
      if (!this.stopped) this.pumpFailures.failed(err);
    } finally {
      this.pumping = undefined;
    }
    if (!this.stopped) this.sleepUntil(wake);
  }

  /** Starts what each endpoint has room for; returns when the earliest future retry is due. */
  private async pumpOnce(): Promise<number | undefined> {
    // An attempt now would be sent and its outcome refused as well: see recordOutcome, which kicks once one lands.
    if (this.unrecorded > 0) return undefined;
    const now = Date.now();
    let wake: number | undefined;
    const soonest = (at: number | undefined) => {
      if (at !== undefined) wake = wake === undefined ? at : Math.min(wake, at);
    };
    const enabled = (await this.enabledEndpoints(now)).filter((e) => e.enabled);
    for (const endpoint of enabled) {
      if (!(await this.ownership.owns(endpoint.id, enabled.length))) {
        // Another node sends these now; forget what was prefetched so nothing stale is sent if the lease comes back,
        // and the circuit: that node starts closed, and so does this one if the lease comes back.
        const lane = this.lanes.get(endpoint.id);
        if (lane) {
          lane.queue.splice(0);
          lane.bypass.clear();
          lane.breaker.reset();
        }
        continue;
      }
      const lane = this.laneFor(endpoint, now);
      const admission = this.admission(endpoint, lane, now);
      if (admission === 'none') {
        // The circuit is open: nothing of this endpoint's is read or sent until the cooldown ends (its deliveries
        // wait in the store, pending and due, spending no retry), but for a test event asked for on this node.
        soonest(lane.breaker.probeAt());
        if (lane.bypass.size > 0) await this.sendBypassed(endpoint, lane);
        continue;
      }
      let room = Math.min(endpoint.maxConcurrency - lane.flying.size, admission === 'probe' ? 1 : Infinity);
      if (lane.bucket) {
        const tokens = lane.bucket.available(now);
        if (tokens <= 0 && room > 0) soonest(now + lane.bucket.msUntilNext());
        room = Math.min(room, tokens);
      }
      if (room <= 0) continue;
      if (lane.queue.length < room) await this.refill(endpoint, lane, now);
      // An answer that came in during the read may have opened (or closed) the circuit: the next pass goes by it.
      if (lane.breaker.admits(now) !== admission) continue;
      lane.bypass.clear();
      for (const delivery of lane.queue.splice(0, room)) {
        lane.bucket?.take(now);
        this.launch(endpoint, lane, delivery, admission === 'probe' ? lane.breaker.probeStarted() : undefined);
      }
      if (lane.queue.length === 0 && lane.flying.size < endpoint.maxConcurrency) {
        const at = await this.store.nextDue(endpoint.id, endpoint.ordering === 'channel');
        // The refill just read every due delivery it could: with the queue empty, one already due is one under way.
        // Its outcome kicks the pump, so waking for it would only poll the store every few ms while the request runs.
        const underWay = lane.flying.size + lane.settling.size > 0;
        soonest(underWay && at !== undefined && at <= now ? undefined : at);
      }
    }
    return wake;
  }

  private async enabledEndpoints(now: number): Promise<EndpointRecord[]> {
    if (!this.endpoints || now - this.endpoints.readAt >= IDLE_TICK_MS) {
      this.endpoints = { list: await this.store.listEndpoints(), readAt: now };
      this.dropIdleLanes(this.endpoints.list);
    }
    return this.endpoints.list;
  }

  /**
   * Tops the queue up to twice the concurrency, skipping what is already
   * queued or under way. Reads on from where the last refill stopped; when
   * that finds too little, it starts over from the oldest due delivery once,
   * which also picks up retries scheduled before the cursor.
   */
  private async refill(endpoint: EndpointRecord, lane: Lane, now: number): Promise<void> {
    const known = new Set([...lane.flying, ...lane.settling, ...lane.queue.map((d) => d.id)]);
    const cap = endpoint.maxConcurrency * 2;
    if (endpoint.ordering === 'channel') {
      // Only each channel's first pending delivery is ever due. One under way (flying or settling) is still pending
      // in the store, so it comes back here as known, and its successor is not read until its outcome is committed.
      lane.cursor = undefined;
      for (const d of await this.store.dueChannelHeads(endpoint.id, now, cap - lane.queue.length + known.size)) {
        if (!known.has(d.id) && lane.queue.length < cap) lane.queue.push(d);
      }
      return;
    }
    for (const from of lane.cursor ? [lane.cursor, undefined] : [undefined]) {
      const want = cap - lane.queue.length;
      if (want <= 0) return;
      const page = await this.store.due(endpoint.id, now, from ? want : want + known.size, from);
      for (const d of page) {
        if (known.has(d.id) || lane.queue.length >= cap) continue;
        lane.queue.push(d);
        known.add(d.id);
      }
      const last = page.at(-1);
      lane.cursor = last ? { nextAttemptAt: last.nextAttemptAt, id: last.id } : undefined;
      if (lane.queue.length >= cap) return;
    }
  }

  /** `probe`: the attempt is the open circuit's probe, with this number (CircuitBreaker.probeStarted). */
  private launch(endpoint: EndpointRecord, lane: Lane, delivery: DeliveryRecord, probe?: number): void {
    lane.flying.add(delivery.id);
    let answered = false;
    const running: Promise<void> = this.attempt(endpoint, delivery, (ok) => {
      // The answer is in: free the slot now; the id stays known until its outcome is committed. The circuit learns
      // of it at once too, before the store writes: a refusing endpoint answers in a millisecond or two, and the
      // pump, kicked here, would otherwise start more attempts while this one's outcome is being written.
      answered = true;
      lane.flying.delete(delivery.id);
      lane.settling.add(delivery.id);
      this.circuitChanged(endpoint, lane, lane.breaker.record(ok, Date.now(), probe));
      this.kick();
    })
      .then(
        () => false,
        (err: unknown) => {
          if (!this.stopped) this.logger.error({ err, delivery: delivery.id }, 'recording an attempt failed');
          return true;
        },
      )
      .then((failed) => {
        this.attempts.delete(running);
        lane.flying.delete(delivery.id);
        // A probe that threw before its answer: the endpoint told nothing, so another probe may go.
        if (probe !== undefined && !answered) lane.breaker.probeLost(probe);
        if (!failed || this.stopped) {
          lane.settling.delete(delivery.id);
          return this.kick();
        }
        // Still pending in the store, and due: picked again at once, a delivery whose attempt keeps throwing (a
        // store that refuses the outcome, a fault of Herald's own) would go round without a pause, and on SQLite,
        // whose calls return at once, without ever yielding the event loop. So it stays known for a while.
        lane.settling.add(delivery.id);
        setTimeout(() => {
          lane.settling.delete(delivery.id);
          this.kick();
        }, FAILED_ATTEMPT_PAUSE_MS).unref();
      });
    this.attempts.add(running);
  }

  /**
   * With each fresh endpoint list: the lanes of endpoints deleted or disabled since go, once nothing of theirs is
   * under way (endpoints come and go). Every node sweeps its own, whichever endpoints it sends for.
   */
  private dropIdleLanes(endpoints: readonly EndpointRecord[]): void {
    const ids = new Set(endpoints.filter((e) => e.enabled).map((e) => e.id));
    for (const [id, lane] of this.lanes) {
      if (!ids.has(id) && lane.flying.size === 0 && lane.settling.size === 0) {
        this.lanes.delete(id);
        this.ownership.forget?.(id);
      }
    }
  }

  private laneFor(endpoint: EndpointRecord, now: number): Lane {
    let lane = this.lanes.get(endpoint.id);
    if (!lane) {
      lane = {
        queue: [],
        flying: new Set(),
        settling: new Set(),
        bucket: undefined,
        rate: undefined,
        cursor: undefined,
        breaker: new CircuitBreaker(this.circuitSettings),
        openedOn: undefined,
        bypass: new Set(),
      };
      this.lanes.set(endpoint.id, lane);
    }
    if (lane.rate !== endpoint.rateLimit) {
      lane.rate = endpoint.rateLimit;
      lane.bucket = endpoint.rateLimit ? new TokenBucket(endpoint.rateLimit, now) : undefined;
    }
    return lane;
  }

  /** Sleeps until the earliest future retry, or the idle tick, whichever is first. */
  private sleepUntil(at: number | undefined): void {
    clearTimeout(this.timer);
    const wait = at === undefined ? IDLE_TICK_MS : Math.min(IDLE_TICK_MS, Math.max(5, at - Date.now()));
    this.timer = setTimeout(() => this.kick(), wait);
    this.timer.unref();
  }

  /**
   * After an endpoint changes: drop its prefetched queue, so the new filter and limits apply; work under way finishes.
   * Its circuit closes: an edit (a fixed URL, header or secret, re-enabling it) is the operator saying try again.
   */
  endpointChanged(id: string): void {
    this.endpoints = undefined;
    const lane = this.lanes.get(id);
    if (lane) {
      lane.queue = [];
      lane.cursor = undefined;
      this.closeCircuit(id, lane, 'the endpoint was changed');
    }
    this.kick();
  }

  /**
   * Failed deliveries of this endpoint were put back (retry, recover): the operator asks for them to go now, as an edit
   * does, so the circuit closes rather than holding them until its next probe.
   */
  retryAsked(endpointId: string): void {
    const lane = this.lanes.get(endpointId);
    if (lane) this.closeCircuit(endpointId, lane, 'a retry was asked for');
    this.kick();
  }

  /** A test event was queued for this endpoint: sent at once even while its circuit is open (see sendBypassed). */
  testQueued(endpointId: string, deliveryId: string): void {
    this.lanes.get(endpointId)?.bypass.add(deliveryId);
    this.kick();
  }

  /** Endpoints whose circuit is open (a probe under way included) on this node, for the gauge. */
  circuitsOpen(): number {
    let open = 0;
    for (const lane of this.lanes.values()) if (lane.breaker.open) open += 1;
    return open;
  }

  private get circuitSettings() {
    const c = this.config.circuitBreaker;
    return { failures: c.failures, cooldownMs: c.cooldown * 1000, maxCooldownMs: c.maxCooldown * 1000 };
  }

  /** What the circuit lets start now; an open one that was opened on another URL, headers or secret closes first. */
  private admission(endpoint: EndpointRecord, lane: Lane, now: number): Admission {
    if (lane.breaker.open && lane.openedOn !== targetOf(endpoint)) this.closeCircuit(endpoint.id, lane, 'the endpoint was changed');
    return lane.breaker.admits(now);
  }

  /**
   * The test events queued on this node, sent although the circuit is open: an operator checking a fix must not wait
   * for the cooldown. Not probes: a failure changes nothing, a success closes the circuit as any success does.
   */
  private async sendBypassed(endpoint: EndpointRecord, lane: Lane): Promise<void> {
    const ids = [...lane.bypass];
    lane.bypass.clear();
    for (const id of ids) {
      const delivery = await this.store.getDelivery(id);
      if (delivery?.status === 'pending' && !lane.flying.has(id) && !lane.settling.has(id)) this.launch(endpoint, lane, delivery);
    }
  }

  /** Closes the circuit because the operator acted (`reason`), with a line if it was open. */
  private closeCircuit(endpointId: string, lane: Lane, reason: string): void {
    if (lane.breaker.reset()) this.logCircuit(endpointId, { to: 'closed', failures: 0 }, reason);
  }

  private circuitChanged(endpoint: EndpointRecord, lane: Lane, change: Transition | undefined): void {
    if (!change) return;
    if (change.to === 'open') {
      // What was prefetched goes back to waiting in the store; the probe reads afresh.
      lane.queue.splice(0);
      lane.cursor = undefined;
      lane.openedOn = targetOf(endpoint);
    }
    this.logCircuit(endpoint.id, change);
  }

  /** Opening warns, a failed probe is debug (the attempt log has it), closing is info; each kind a few lines a second at most. */
  private logCircuit(endpointId: string, change: Transition, reason?: string): void {
    const kind = change.to === 'closed' ? 'closed' : change.probeFailed ? 'probe' : 'open';
    const admitted = this.circuitLog.admit(kind);
    if (!admitted) return;
    const unlogged = admitted.unlogged > 0 ? { unlogged: admitted.unlogged } : {};
    if (change.to === 'closed') {
      this.logger.info({ endpoint: endpointId, ...(reason ? { reason } : { failures: change.failures }), ...unlogged }, 'endpoint circuit closed: deliveries flow again');
    } else {
      const fields = { endpoint: endpointId, failures: change.failures, cooldown: change.cooldownMs / 1000, ...unlogged };
      if (change.probeFailed) this.logger.debug(fields, 'endpoint circuit probe failed: open again');
      else this.logger.warn(fields, 'endpoint circuit opened: no deliveries to it until a probe succeeds');
    }
  }

  /** `answered` is told, as soon as the answer is in, whether it was a success. */
  private async attempt(endpoint: EndpointRecord, delivery: DeliveryRecord, answered: (ok: boolean) => void): Promise<void> {
    const at = Date.now();
    const sent = await deliveryAttemptSpan(delivery.payload, { 'herald.endpoint': endpoint.id, 'herald.attempt': delivery.attempts + 1 }, (traceparent) =>
      this.send(endpoint, delivery, traceparent),
    );
    const done = Date.now();
    const verdict = sent.statusCode === undefined ? { kind: 'retry' as const } : judge(sent.statusCode, sent.retryAfter, done, this.config.retryAfterMax * 1000);
    answered(verdict.kind === 'success');
    // Cut off by shutdown (past its grace): record nothing, so the delivery stays pending and is retried after restart.
    if (this.abandoned) return;
    recordAttemptMetrics(sent.statusCode, sent.error, delivery.createdAt, done);
    const attempts = delivery.attempts + 1;
    let status: DeliveryRecord['status'] = 'pending';
    let next = done;
    if (verdict.kind === 'success') {
      status = 'succeeded';
    } else if (verdict.kind === 'gone' || delivery.finalAttempt) {
      status = 'failed';
    } else {
      const when = nextAttemptAt(attempts, done, this.config.retrySchedule, this.config.jitter, verdict.retryAfterMs);
      if (when === undefined) status = 'failed';
      else next = when;
    }
    await this.recordOutcome({
      attempt: { deliveryId: delivery.id, at, statusCode: sent.statusCode, durationMs: sent.durationMs, error: sent.error, responseBody: sent.responseBody },
      status,
      attempts,
      nextAttemptAt: next,
    });
    // The common case, a success on a healthy endpoint, changes nothing: skip the store read (a query on PostgreSQL).
    if (verdict.kind === 'success' && endpoint.failingSince === undefined) return;
    await this.trackHealth(endpoint.id, verdict.kind, done);
  }

  /**
   * Writes an attempt's outcome, and writes it again while the store refuses it for now (the disk full, PostgreSQL
   * unreachable), backing off from 0.5 to 10 s: the request was sent, and without its record the delivery stays due.
   * Before, it was sent again each second for as long as the outage lasted (a receiver that had answered 200 got the
   * same event a dozen times), and a Retry-After went unheeded. Meanwhile no attempt starts (pumpOnce), and a disk
   * found full turns /readyz to 503 as a failed publish does. A stop gives up: the delivery, still pending in the
   * store, is sent again after the restart (at least once).
   */
  private async recordOutcome(outcome: AttemptOutcome): Promise<void> {
    let waitMs = OUTCOME_RETRY_MS.first;
    let refused = false;
    try {
      for (;;) {
        try {
          await this.store.recordAttempt(outcome);
          if (refused) this.log.writes.succeeded();
          return;
        } catch (error) {
          if (this.stopped || !refusedForNow(error)) throw error;
          if (!refused) {
            refused = true;
            this.unrecorded += 1;
          }
          this.log.writes.failed(error);
          const logged = this.outcomeLog.admit('refused');
          if (logged) {
            this.logger.error(
              { err: error, delivery: outcome.attempt.deliveryId, waiting: this.unrecorded, ...(logged.unlogged > 0 ? { unlogged: logged.unlogged } : {}) },
              'the store refuses the outcomes of delivery attempts: writing them again, and starting no attempt until it takes them',
            );
          }
        }
        // Ended early by stop, after which the next refusal is thrown.
        await sleep(waitMs, undefined, { signal: this.stopping.signal }).catch(() => {});
        waitMs = Math.min(waitMs * 2, OUTCOME_RETRY_MS.max);
      }
    } finally {
      if (refused) {
        this.unrecorded -= 1;
        this.kick();
      }
    }
  }

  /** Success ends a failing streak; 410, or failing without a break for too long, disables the endpoint. */
  private async trackHealth(endpointId: string, verdict: 'success' | 'gone' | 'retry', now: number): Promise<void> {
    const endpoint = await this.store.getEndpoint(endpointId);
    if (!endpoint) return;
    // The cached list must not keep a streak this attempt ends or starts: the next pump reads the endpoints afresh.
    this.endpoints = undefined;
    if (verdict === 'success') {
      if (endpoint.failingSince !== undefined) await this.store.updateEndpoint({ ...endpoint, failingSince: undefined });
      return;
    }
    if (!endpoint.enabled) return;
    if (verdict === 'gone') return this.disable(endpoint, 'The endpoint answered 410 Gone.');
    const since = endpoint.failingSince ?? now;
    if (now - since >= this.config.disableAfter * 1000) {
      return this.disable({ ...endpoint, failingSince: since }, `The endpoint failed without a break for ${this.config.disableAfter} s.`);
    }
    if (endpoint.failingSince === undefined) await this.store.updateEndpoint({ ...endpoint, failingSince: since });
  }

  private async disable(endpoint: EndpointRecord, reason: string): Promise<void> {
    await this.store.updateEndpoint({ ...endpoint, enabled: false, disabledReason: reason });
    this.logger.warn({ endpoint: endpoint.id, reason }, 'endpoint disabled');
    await this.log.publish([{ channel: SYSTEM_CHANNEL, type: 'endpoint.disabled', data: { endpointId: endpoint.id, url: endpoint.url, reason } }], undefined, {
      via: 'system',
    });
  }

  private async send(endpoint: EndpointRecord, delivery: DeliveryRecord, traceparent?: string): Promise<Sent> {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    const route = endpoint.tenant === undefined ? this.platform : this.tenants;
    const { url, refused } = this.target(endpoint.url, route);
    if (refused) return { error: `SSRF guard: ${refused}`, durationMs: elapsed() };
    const secrets = liveSecrets(endpoint.secrets).map((s) => s.secret);
    let signed: Record<string, string>;
    // What the scheme's receivers expect besides the signature (GitHub's x-github-event), unless the endpoint sets it.
    let expected: Record<string, string>;
    try {
      expected = schemeHeaders(endpoint.scheme, delivery.payload, endpoint.headers);
      signed = sign(endpoint.scheme as Scheme, { secrets, id: webhookIdOf(endpoint.scheme, delivery.eventId), body: delivery.payload });
    } catch (err) {
      // A failed attempt, retried on the schedule and then failed, never an error that leaves the delivery
      // pending without an attempt for good.
      return { error: `signing failed: ${(err as Error).message}`, durationMs: elapsed() };
    }
    // The whole attempt ends by twice the timeout: a receiver that keeps sending interim (1xx) answers never lets
    // undici's headers timeout fire, and would hold the attempt, and its endpoint's concurrency, for good. A timer
    // cleared when the attempt ends, not AbortSignal.timeout: busy endpoints would keep thousands of those waiting.
    const abort = new AbortController();
    const deadline = abort.signal;
    const timer = setTimeout(() => abort.abort(), this.config.timeout * 2000);
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: route.agent,
        signal: deadline,
        headers: { ...expected, ...endpoint.headers, ...(traceparent ? { traceparent } : {}), ...signed, 'content-type': 'application/json', 'user-agent': this.userAgent },
        body: delivery.payload,
        // The timeout bounds the wait for the answer and each pause in its body; the body read is capped below.
        headersTimeout: this.config.timeout * 1000,
        bodyTimeout: this.config.timeout * 1000,
      });
      const retryAfter = res.headers['retry-after'];
      return {
        statusCode: res.statusCode,
        ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
        responseBody: await readStart(res.body, res.headers['content-length']),
        durationMs: elapsed(),
      };
    } catch (err) {
      if (deadline.aborted) return { error: `ATTEMPT_TIMEOUT: the attempt took over ${this.config.timeout * 2} s, twice delivery.timeout`, durationMs: elapsed() };
      const error = err as Error & { code?: string; cause?: { code?: string; message?: string } };
      const code = error.code ?? error.cause?.code;
      return { error: `${code ? `${code}: ` : ''}${error.cause?.message ?? error.message}`, durationMs: elapsed() };
    } finally {
      clearTimeout(timer);
    }
  }

  private readonly targets = new Map<Route, Map<string, { url: URL; refused: string | undefined }>>();

  /** The parsed URL, and the literal-IP check (a literal IP never goes through DNS, so the lookup hook cannot see it). */
  private target(href: string, route: Route): { url: URL; refused: string | undefined } {
    let known = this.targets.get(route);
    if (!known) this.targets.set(route, (known = new Map()));
    let target = known.get(href);
    if (!target) {
      const url = new URL(href);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      target = { url, refused: isIP(host) ? route.guard.refusal(host) : undefined };
      if (known.size > 10_000) known.clear();
      known.set(href, target);
    }
    return target;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // Nothing new starts; what is in flight gets STOP_GRACE_MS to end and be recorded.
    await this.pumping;
    const grace = new AbortController();
    await Promise.race([Promise.allSettled([...this.attempts]), sleep(STOP_GRACE_MS, undefined, { signal: grace.signal }).catch(() => {})]);
    grace.abort();
    // The rest are abandoned: their deliveries stay pending and are retried after restart.
    this.abandoned = true;
    this.stopping.abort();
    await Promise.all([...new Set([this.platform.agent, this.tenants.agent])].map((agent) => agent.destroy()));
    await Promise.allSettled([...this.attempts]);
  }
}
