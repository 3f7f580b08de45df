import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AttemptOutcome, DeliveryRecord, DeliveryStore, EndpointRecord, NewDelivery } from './types.js';
import { useStorage, type OpenStorage } from './storage-harness.js';

function endpoint(id: string, extra: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    id, url: `https://example.com/${id}`, channels: ['orders'], types: ['order.*'], scheme: 'standard',
    secrets: [{ secret: 'whsec_1' }], headers: { 'x-team': 'a' }, maxConcurrency: 4, enabled: true, createdAt: 1000, ...extra,
  };
}

function delivery(endpointId: string, seq: number, createdAt = 1000, channel = 'orders'): NewDelivery {
  return { endpointId, eventId: `evt_${channel}_${seq}`, channel, seq, payload: `{"seq":${seq}}`, createdAt };
}

/** Every delivery of an endpoint, oldest first. */
async function all(store: DeliveryStore, endpointId: string): Promise<DeliveryRecord[]> {
  return (await store.listDeliveries(endpointId, undefined, 1000)).reverse();
}

function outcome(d: DeliveryRecord, extra: Partial<AttemptOutcome> & { at: number; statusCode?: number; error?: string }): AttemptOutcome {
  const { at, statusCode, error, ...rest } = extra;
  return {
    attempt: { deliveryId: d.id, at, statusCode, durationMs: 12.5, error, responseBody: statusCode === undefined ? undefined : `body ${statusCode}` },
    status: 'pending', attempts: d.attempts + 1, nextAttemptAt: at + 5000, ...rest,
  };
}

/** The contract of DeliveryStore, for every backend (the SQLite store is the reference). */
export function describeDeliveryStoreConformance(name: string, open: OpenStorage): void {
  describe(`DeliveryStore conformance: ${name}`, () => {
    const storage = useStorage(open);
    const store = () => storage().deliveries;
    /** Creates deliveries as the dispatcher does, for endpoints that exist: any of theirs not yet inserted is first. */
    const create = async (channel: string, seq: number, deliveries: NewDelivery[]) => {
      for (const id of new Set(deliveries.map((d) => d.endpointId))) {
        if (!(await store().getEndpoint(id))) await store().insertEndpoint(endpoint(id));
      }
      await store().createDeliveries(channel, seq, deliveries);
    };

    it('keeps endpoints, hands out copies, and updates them', async () => {
      const record = endpoint('ep_1', { rateLimit: 10, description: 'orders', failingSince: 5000 });
      await store().insertEndpoint(record);
      await store().insertEndpoint(endpoint('ep_0'));
      assert.deepEqual(await store().getEndpoint('ep_1'), record);
      const copy = (await store().getEndpoint('ep_1'))!;
      copy.enabled = false;
      assert.equal((await store().getEndpoint('ep_1'))!.enabled, true, 'editing a returned record changes nothing');
      await store().updateEndpoint({ ...record, enabled: false, disabledReason: 'gone' });
      assert.equal((await store().getEndpoint('ep_1'))!.disabledReason, 'gone');
      const listed = (await store().listEndpoints()).sort((a, b) => a.id.localeCompare(b.id));
      assert.deepEqual(listed.map((e) => [e.id, e.enabled]), [['ep_0', true], ['ep_1', false]]);
      assert.equal(await store().getEndpoint('nope'), undefined);
    });

    it("keeps an endpoint's tenant and lists one tenant's endpoints", async () => {
      await store().insertEndpoint(endpoint('ep_a1', { tenant: 'acme' }));
      await store().insertEndpoint(endpoint('ep_b1', { tenant: 'globex' }));
      await store().insertEndpoint(endpoint('ep_none'));
      await store().insertEndpoint(endpoint('ep_a2', { tenant: 'acme' }));
      assert.equal((await store().getEndpoint('ep_a1'))!.tenant, 'acme');
      assert.equal((await store().getEndpoint('ep_none'))!.tenant, undefined);
      const ids = async (tenant?: string) => (await store().listEndpoints(tenant === undefined ? {} : { tenant })).map((e) => e.id).sort();
      assert.deepEqual(await ids('acme'), ['ep_a1', 'ep_a2']);
      assert.deepEqual(await ids('globex'), ['ep_b1']);
      assert.deepEqual(await ids('nobody'), []);
      assert.deepEqual(await ids(), ['ep_a1', 'ep_a2', 'ep_b1', 'ep_none'], 'no filter: every endpoint, with a tenant or without');
      // Moving an endpoint to another tenant, or out of any, moves it in the filtered lists too.
      await store().updateEndpoint({ ...(await store().getEndpoint('ep_a2'))!, tenant: 'globex' });
      const { tenant: _dropped, ...untenanted } = (await store().getEndpoint('ep_a1'))!;
      await store().updateEndpoint(untenanted);
      assert.deepEqual(await ids('acme'), []);
      assert.deepEqual(await ids('globex'), ['ep_a2', 'ep_b1']);
      assert.equal((await store().getEndpoint('ep_a1'))!.tenant, undefined);
    });

    it('inserts an endpoint of a tenant only while the tenant has fewer than the limit, however many race', async () => {
      assert.equal(await store().insertEndpoint(endpoint('ep_l1', { tenant: 'lim' }), 2), true);
      assert.equal(await store().insertEndpoint(endpoint('ep_other', { tenant: 'other' })), true);
      // Twenty at once, each on whatever connection it gets: one more fits, whichever it is.
      const raced = await Promise.all(Array.from({ length: 20 }, (_, i) => store().insertEndpoint(endpoint(`ep_r${i}`, { tenant: 'lim' }), 2)));
      assert.equal(raced.filter(Boolean).length, 1, `inserted: ${raced.map(Number).join('')}`);
      const of = async (tenant: string) => (await store().listEndpoints({ tenant })).map((e) => e.id);
      assert.equal((await of('lim')).length, 2);
      const refused = raced.map((ok, i) => (ok ? undefined : `ep_r${i}`)).filter((id) => id !== undefined);
      for (const id of refused) assert.equal(await store().getEndpoint(id), undefined, `${id} was refused and is not stored`);
      // Other tenants, and endpoints of no tenant, are not counted against it, nor limited without a limit.
      assert.equal(await store().insertEndpoint(endpoint('ep_o2', { tenant: 'other' }), 2), true);
      assert.equal(await store().insertEndpoint(endpoint('ep_o3', { tenant: 'other' }), 2), false);
      assert.equal(await store().insertEndpoint(endpoint('ep_free'), 1), true);
      assert.equal(await store().insertEndpoint(endpoint('ep_l3', { tenant: 'lim' })), true);
      // Room again once one is deleted.
      await store().deleteEndpoint('ep_l1');
      await store().deleteEndpoint('ep_l3');
      assert.equal(await store().insertEndpoint(endpoint('ep_l4', { tenant: 'lim' }), 2), true);
      assert.equal((await of('lim')).length, 2);
    });

    it('deletes an endpoint with its deliveries', async () => {
      await store().insertEndpoint(endpoint('ep_1'));
      await store().insertEndpoint(endpoint('ep_2'));
      await create('orders', 1, [delivery('ep_1', 1), delivery('ep_2', 1)]);
      const [mine] = await all(store(), 'ep_1');
      assert.equal(await store().deleteEndpoint('ep_1'), true);
      assert.equal(await store().deleteEndpoint('ep_1'), false);
      assert.equal(await store().getEndpoint('ep_1'), undefined);
      assert.equal(await store().getDelivery(mine!.id), undefined);
      assert.equal((await all(store(), 'ep_2')).length, 1, 'other endpoints keep theirs');
    });

    it("never gives a deleted endpoint's delivery id again, and deletes its attempts with it", async () => {
      // The newest delivery belongs to the endpoint deleted: a store that reused its id gave the next endpoint's
      // delivery the deleted one's attempts (a portal tenant read another endpoint's receiver answers).
      await store().insertEndpoint(endpoint('ep_old'));
      await store().insertEndpoint(endpoint('ep_new', { tenant: 'globex' }));
      await create('orders', 1, [delivery('ep_old', 1)]);
      const [old] = await all(store(), 'ep_old');
      await store().recordAttempt(outcome(old!, { at: 2000, statusCode: 500 }));
      assert.equal(await store().deleteEndpoint('ep_old'), true);
      assert.deepEqual(await store().listAttempts(old!.id), [], 'the attempts go with their delivery');
      await create('orders', 2, [delivery('ep_new', 2)]);
      const [fresh] = await all(store(), 'ep_new');
      assert.notEqual(fresh!.id, old!.id);
      assert.ok(Number(fresh!.id.slice(4)) > Number(old!.id.slice(4)), `${fresh!.id} after ${old!.id}`);
      assert.deepEqual(await store().listAttempts(fresh!.id), []);
    });

    it('creates no delivery for an endpoint deleted before, and moves the cursor all the same', async () => {
      // The dispatcher holds its endpoints in memory and may still match one deleted a moment ago (on another node too).
      await store().insertEndpoint(endpoint('ep_kept'));
      await store().insertEndpoint(endpoint('ep_deleted'));
      assert.equal(await store().deleteEndpoint('ep_deleted'), true);
      await store().createDeliveries('orders', 3, [delivery('ep_deleted', 3), delivery('ep_kept', 3)]);
      assert.deepEqual(await all(store(), 'ep_deleted'), [], 'nothing owed to an endpoint that is gone');
      assert.deepEqual((await all(store(), 'ep_kept')).map((d) => d.seq), [3]);
      assert.equal(await store().cursor('orders'), 3);
      await store().createDeliveries('orders', 4, [delivery('ep_never', 4)]);
      assert.deepEqual(await all(store(), 'ep_never'), []);
      assert.equal(await store().cursor('orders'), 4);
    });

    it('leaves no attempt behind for a delivery deleted with its endpoint while it was being sent', async () => {
      await store().insertEndpoint(endpoint('ep_gone'));
      await create('orders', 1, [delivery('ep_gone', 1)]);
      const [sent] = await all(store(), 'ep_gone');
      assert.equal(await store().deleteEndpoint('ep_gone'), true);
      // The attempt ends after the delete: its outcome is recorded as nothing.
      await store().recordAttempt(outcome(sent!, { at: 2000, statusCode: 200, status: 'succeeded' }));
      assert.deepEqual(await store().listAttempts(sent!.id), []);
      // And racing the delete: whichever comes first, no attempt outlives its delivery.
      for (let round = 0; round < 20; round++) {
        const id = `ep_race_${round}`;
        await store().insertEndpoint(endpoint(id));
        await create('orders', 2 + round, [delivery(id, 2 + round)]);
        const [d] = await all(store(), id);
        await Promise.all([store().recordAttempt(outcome(d!, { at: 3000, statusCode: 500 })), store().deleteEndpoint(id)]);
        assert.deepEqual(await store().listAttempts(d!.id), [], `round ${round}`);
      }
    });

    it('creates deliveries and moves the cursor together, never backwards', async () => {
      assert.deepEqual(await store().cursors(), new Map());
      await create('orders', 2, [delivery('ep_1', 1), delivery('ep_1', 2)]);
      await create('audit', 7, []);
      await create('orders', 1, []);
      assert.deepEqual(await store().cursors(), new Map([['orders', 2], ['audit', 7]]));
      assert.deepEqual([await store().cursor('orders'), await store().cursor('audit'), await store().cursor('never')], [2, 7, undefined]);
      assert.deepEqual(await store().cursorsOf(['audit', 'never', 'orders']), new Map([['audit', 7], ['orders', 2]]));
      assert.deepEqual(await store().cursorsOf([]), new Map());
      const rows = await all(store(), 'ep_1');
      assert.deepEqual(rows.map((d) => [d.eventId, d.seq, d.status, d.attempts, d.nextAttemptAt, d.finalAttempt]), [
        ['evt_orders_1', 1, 'pending', 0, 1000, false],
        ['evt_orders_2', 2, 'pending', 0, 1000, false],
      ]);
      assert.match(rows[0]!.id, /^dlv_\d+$/);
      assert.deepEqual(await store().getDelivery(rows[1]!.id), { ...rows[1], payload: '{"seq":2}' });
    });

    it('saves many cursors in one write, never moving one backwards', async () => {
      await create('orders', 5, []);
      await store().saveCursors(new Map([['orders', 3], ['audit', 9], ['new', 1]]));
      await store().saveCursors(new Map());
      assert.deepEqual(await store().cursors(), new Map([['orders', 5], ['audit', 9], ['new', 1]]));
      await store().saveCursors(new Map([['orders', 6], ['audit', 2]]));
      assert.deepEqual(await store().cursors(), new Map([['orders', 6], ['audit', 9], ['new', 1]]));
      assert.deepEqual([await store().cursor('orders'), await store().cursor('audit'), await store().cursor('new')], [6, 9, 1]);
    });

    it('ignores a delivery that already exists', async () => {
      await create('orders', 1, [delivery('ep_1', 1)]);
      const [first] = await all(store(), 'ep_1');
      await store().recordAttempt(outcome(first!, { at: 2000, statusCode: 500 }));
      // The dispatcher re-derives after a crash: same endpoint and event again, plus a new one.
      await create('orders', 2, [delivery('ep_1', 1, 9999), delivery('ep_1', 2)]);
      const rows = await all(store(), 'ep_1');
      assert.deepEqual(rows.map((d) => d.eventId), ['evt_orders_1', 'evt_orders_2']);
      assert.equal(rows[0]!.id, first!.id);
      assert.equal(rows[0]!.attempts, 1, 'the existing delivery keeps its state');
      assert.equal((await store().cursors()).get('orders'), 2);
    });

    it('gives an event id a publisher chose again, once retention removed its first event, a delivery of its own', async () => {
      await create('orders', 1, [{ ...delivery('ep_1', 1), eventId: 'order-7' }]);
      // The same id at a new place in the log (the same channel later, then another channel): another event.
      await create('orders', 5, [{ ...delivery('ep_1', 5), eventId: 'order-7' }]);
      await create('audit', 1, [{ ...delivery('ep_1', 1, 1000, 'audit'), eventId: 'order-7' }]);
      // Each derived again (a dispatcher after a crash): still one delivery each.
      await create('orders', 5, [{ ...delivery('ep_1', 1, 9999), eventId: 'order-7' }, { ...delivery('ep_1', 5, 9999), eventId: 'order-7' }]);
      assert.deepEqual((await all(store(), 'ep_1')).map((d) => [d.eventId, d.channel, d.seq]), [['order-7', 'orders', 1], ['order-7', 'orders', 5], ['order-7', 'audit', 1]]);
    });

    it('pages due deliveries by (nextAttemptAt, id), per endpoint', async () => {
      const times = [5000, 1000, 3000, 1000, 9000];
      await create('orders', 5, times.map((t, i) => delivery('ep_1', i + 1, t)));
      await create('orders', 6, [delivery('ep_2', 6, 1000)]);
      const expected = (await all(store(), 'ep_1'))
        .filter((d) => d.nextAttemptAt <= 5000)
        .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || Number(a.id.slice(4)) - Number(b.id.slice(4)))
        .map((d) => d.seq);
      assert.deepEqual(expected, [2, 4, 3, 1]);
      const first = await store().due('ep_1', 5000, 2);
      assert.deepEqual(first.map((d) => d.seq), [2, 4]);
      const last = first.at(-1)!;
      const second = await store().due('ep_1', 5000, 2, { nextAttemptAt: last.nextAttemptAt, id: last.id });
      assert.deepEqual(second.map((d) => d.seq), [3, 1]);
      const end = second.at(-1)!;
      assert.deepEqual(await store().due('ep_1', 5000, 2, { nextAttemptAt: end.nextAttemptAt, id: end.id }), []);
      assert.deepEqual((await store().due('ep_1', 999, 10)).map((d) => d.seq), []);
      assert.equal(await store().nextDue('ep_1'), 1000);
      assert.equal(await store().nextDue('ep_3'), undefined);
    });

    it('ordering "channel": only the first pending delivery of each channel is due, until it succeeds or fails for good', async () => {
      await create('orders', 3, [1, 2, 3].map((s) => delivery('ep_1', s)));
      await create('audit', 2, [delivery('ep_1', 1, 2000, 'audit'), delivery('ep_1', 2, 1000, 'audit')]);
      await create('orders', 3, [delivery('ep_2', 1)]);
      const heads = async (now: number, limit = 10, endpoint = 'ep_1') =>
        (await store().dueChannelHeads(endpoint, now, limit)).map((d) => `${d.channel}:${d.seq}`);
      const find = async (channel: string, seq: number) => (await all(store(), 'ep_1')).find((d) => d.channel === channel && d.seq === seq)!;

      // audit:2 is due sooner than audit:1, and still waits behind it.
      assert.deepEqual(await heads(5000), ['orders:1', 'audit:1']);
      assert.deepEqual(await heads(1500), ['orders:1'], 'audit:1 is not due yet, and audit:2 waits behind it');
      assert.deepEqual(await heads(5000, 1), ['orders:1'], 'the limit holds');
      assert.deepEqual(await heads(5000, 10, 'ep_2'), ['orders:1'], 'per endpoint');
      assert.equal(await store().nextDue('ep_1', true), 1000);

      // A failed attempt to be retried later holds its channel back; the other channel goes on.
      await store().recordAttempt(outcome(await find('orders', 1), { at: 2000, statusCode: 500, nextAttemptAt: 7000 }));
      assert.deepEqual(await heads(5000), ['audit:1'], 'orders:2 is due but waits for orders:1');
      await store().recordAttempt(outcome(await find('audit', 1), { at: 2000, statusCode: 200, status: 'succeeded' }));
      assert.deepEqual(await heads(5000), ['audit:2']);
      await store().recordAttempt(outcome(await find('audit', 2), { at: 2000, statusCode: 200, status: 'succeeded' }));
      assert.deepEqual(await heads(5000), [], 'orders:1 is not due again until 7000');
      assert.equal(await store().nextDue('ep_1', true), 7000, 'the next head is due at 7000');
      assert.equal(await store().nextDue('ep_1'), 1000, 'without channelHeads: the waiting orders:2');
      assert.deepEqual(await heads(7000), ['orders:1']);

      // A dead letter lets the next one go; retrying the dead letter puts it first again.
      await store().recordAttempt(outcome(await find('orders', 1), { at: 7000, statusCode: 500, status: 'failed' }));
      assert.deepEqual(await heads(7000), ['orders:2']);
      assert.equal(await store().retry((await find('orders', 1)).id, 8000), true);
      assert.deepEqual(await heads(8000), ['orders:1'], 'a retried dead letter goes before the rest of its channel');
      await store().recordAttempt(outcome(await find('orders', 1), { at: 8000, statusCode: 200, status: 'succeeded' }));
      await store().recordAttempt(outcome(await find('orders', 2), { at: 8000, statusCode: 200, status: 'succeeded' }));
      assert.deepEqual(await heads(8000), ['orders:3']);
      await store().recordAttempt(outcome(await find('orders', 3), { at: 8000, statusCode: 200, status: 'succeeded' }));
      assert.deepEqual(await heads(8000), []);
      assert.equal(await store().nextDue('ep_1', true), undefined);
    });

    it('ordering "channel": the head is the lowest seq, whatever order the deliveries were created in, over many channels', async () => {
      // A backfill can create a channel's earlier deliveries after its later ones.
      await create('late', 5, [delivery('ep_1', 5, 1000, 'late')]);
      await create('late', 5, [delivery('ep_1', 4, 3000, 'late')]);
      assert.deepEqual((await store().dueChannelHeads('ep_1', 2000, 10)).map((d) => d.seq), [], 'late:5 waits for late:4, not yet due');
      assert.deepEqual((await store().dueChannelHeads('ep_1', 3000, 10)).map((d) => d.seq), [4]);
      const channels = Array.from({ length: 40 }, (_, i) => `ch:${String(i).padStart(2, '0')}`);
      for (const channel of channels) await create(channel, 3, [1, 2, 3].map((s) => delivery('ep_1', s, 1000, channel)));
      const due = await store().dueChannelHeads('ep_1', 3000, 100);
      assert.deepEqual(due.map((d) => `${d.channel}:${d.seq}`).sort(), [...channels.map((c) => `${c}:1`), 'late:4'].sort());
      assert.deepEqual(due.slice(0, 40).map((d) => d.nextAttemptAt), Array(40).fill(1000), 'in (nextAttemptAt, id) order');
    });

    it('records attempts, and drops the payload once delivered', async () => {
      await create('orders', 1, [delivery('ep_1', 1)]);
      let [d] = await all(store(), 'ep_1');
      await store().recordAttempt(outcome(d!, { at: 2000, error: 'ECONNREFUSED' }));
      d = (await store().getDelivery(d!.id))!;
      assert.deepEqual([d.status, d.attempts, d.nextAttemptAt, d.lastError, d.lastStatusCode, d.payload], ['pending', 1, 7000, 'ECONNREFUSED', undefined, '{"seq":1}']);
      assert.equal(await store().nextDue('ep_1'), 7000);
      await store().recordAttempt(outcome(d, { at: 8000, statusCode: 200, status: 'succeeded' }));
      d = (await store().getDelivery(d.id))!;
      assert.deepEqual([d.status, d.attempts, d.lastStatusCode, d.lastError, d.payload], ['succeeded', 2, 200, undefined, '']);
      assert.equal(await store().nextDue('ep_1'), undefined, 'a succeeded delivery is no longer due');
      assert.deepEqual(await store().listAttempts(d.id), [
        { deliveryId: d.id, at: 2000, statusCode: undefined, durationMs: 12.5, error: 'ECONNREFUSED', responseBody: undefined },
        { deliveryId: d.id, at: 8000, statusCode: 200, durationMs: 12.5, error: undefined, responseBody: 'body 200' },
      ]);
      assert.deepEqual(await store().listAttempts('dlv_999999'), []);
      assert.deepEqual(await store().listAttempts('not-an-id'), []);
    });

    it('records many attempts at once, each on its own delivery, the later of two for one delivery last', async () => {
      await create('many', 300, Array.from({ length: 300 }, (_, i) => delivery('ep_1', i + 1, 1000, 'many')));
      const rows = await all(store(), 'ep_1');
      const first = rows[0]!;
      // Recorded in the same turn of the event loop, as a busy worker's outcomes are.
      await Promise.all([
        ...rows.map((d, i) => store().recordAttempt(outcome(d, { at: 2000 + i, statusCode: i % 2 ? 200 : 503, status: i % 2 ? 'succeeded' : 'pending' }))),
        store().recordAttempt(outcome({ ...first, attempts: 1 }, { at: 9000, statusCode: 200, status: 'succeeded' })),
      ]);
      const after = await all(store(), 'ep_1');
      assert.deepEqual(after.slice(1).map((d) => [d.seq, d.status, d.attempts, d.lastStatusCode]), rows.slice(1).map((d, i) => [d.seq, (i + 1) % 2 ? 'succeeded' : 'pending', 1, (i + 1) % 2 ? 200 : 503]));
      assert.deepEqual([after[0]!.status, after[0]!.attempts, after[0]!.lastStatusCode], ['succeeded', 2, 200]);
      assert.deepEqual((await store().listAttempts(first.id)).map((a) => [a.at, a.statusCode]), [[2000, 503], [9000, 200]]);
      assert.deepEqual((await store().listAttempts(rows[299]!.id)).map((a) => [a.at, a.statusCode, a.responseBody]), [[2299, 200, 'body 200']]);
    });

    it('records a receiver answer holding a NUL byte, and the outcomes written beside it', async () => {
      await create('nul', 3, [1, 2, 3].map((s) => delivery('ep_1', s, 1000, 'nul')));
      const rows = await all(store(), 'ep_1');
      const withNul = (d: DeliveryRecord): AttemptOutcome => {
        const o = outcome(d, { at: 3000, statusCode: 500 });
        return { ...o, attempt: { ...o.attempt, responseBody: 'a\0b', error: 'x\0y' } };
      };
      // In the same turn of the event loop, so a store that batches writes them together.
      await Promise.all(rows.map((d, i) => store().recordAttempt(i === 1 ? withNul(d) : outcome(d, { at: 3000, statusCode: 200, status: 'succeeded' }))));
      const [attempt] = await store().listAttempts(rows[1]!.id);
      assert.match(attempt!.responseBody!, /^a.b$/s);
      assert.match(attempt!.error!, /^x.y$/s);
      assert.deepEqual((await all(store(), 'ep_1')).map((d) => d.status), ['succeeded', 'pending', 'succeeded']);
    });

    it('lists deliveries without their payloads, which getDelivery reads one at a time', async () => {
      // A payload is the event (up to limits.bodyBytes) and is kept until delivered: a page of 1000 that loaded each
      // one made a portal session's delivery list or stats hold hundreds of megabytes per request.
      const payload = JSON.stringify({ data: 'x'.repeat(100_000) });
      await create('orders', 2, [1, 2].map((seq) => ({ ...delivery('ep_1', seq), payload })));
      const rows = await store().listDeliveries('ep_1', undefined, 10);
      assert.deepEqual(rows.map((d) => [d.seq, d.payload]), [[2, ''], [1, '']]);
      assert.equal((await store().getDelivery(rows[0]!.id))!.payload, payload);
    });

    it('lists deliveries newest first, by status', async () => {
      await create('orders', 3, [1, 2, 3].map((s) => delivery('ep_1', s)));
      const [d1] = await all(store(), 'ep_1');
      await store().recordAttempt(outcome(d1!, { at: 2000, statusCode: 500, status: 'failed' }));
      assert.deepEqual((await store().listDeliveries('ep_1', undefined, 10)).map((d) => d.seq), [3, 2, 1]);
      assert.deepEqual((await store().listDeliveries('ep_1', undefined, 2)).map((d) => d.seq), [3, 2]);
      assert.deepEqual((await store().listDeliveries('ep_1', 'pending', 10)).map((d) => d.seq), [3, 2]);
      assert.deepEqual((await store().listDeliveries('ep_1', 'failed', 10)).map((d) => d.seq), [1]);
      assert.equal(await store().getDelivery('dlv_999999'), undefined);
      assert.equal(await store().getDelivery('nope'), undefined);
    });

    it('retries one failed delivery, once, as a final attempt', async () => {
      await create('orders', 3, [1, 2, 3].map((s) => delivery('ep_1', s)));
      const [failed, succeeded, pending] = await all(store(), 'ep_1');
      await store().recordAttempt(outcome(failed!, { at: 2000, statusCode: 500, status: 'failed' }));
      await store().recordAttempt(outcome(succeeded!, { at: 2000, statusCode: 200, status: 'succeeded' }));
      assert.equal(await store().retry(failed!.id, 50_000), true);
      const retried = (await store().getDelivery(failed!.id))!;
      assert.deepEqual([retried.status, retried.nextAttemptAt, retried.finalAttempt], ['pending', 50_000, true]);
      assert.equal(await store().retry(failed!.id, 60_000), false, 'no longer failed');
      assert.equal(await store().retry(succeeded!.id, 60_000), false);
      assert.equal(await store().retry(pending!.id, 60_000), false);
      assert.equal(await store().retry('dlv_999999', 60_000), false);
      assert.equal(await store().retry('nope', 60_000), false);
      // The final attempt's outcome clears the flag.
      await store().recordAttempt(outcome(retried, { at: 50_000, statusCode: 500, status: 'failed' }));
      assert.equal((await store().getDelivery(failed!.id))!.finalAttempt, false);
    });

    it('recovers the failed deliveries created in a time range', async () => {
      const created = [1000, 2000, 3000, 4000];
      await create('orders', 4, created.map((t, i) => delivery('ep_1', i + 1, t)));
      await create('orders', 5, [delivery('ep_2', 5, 2000)]);
      for (const d of [...(await all(store(), 'ep_1')), ...(await all(store(), 'ep_2'))]) {
        const status = d.seq === 3 ? 'succeeded' : 'failed';
        await store().recordAttempt(outcome(d, { at: 9000, statusCode: 500, status }));
      }
      const any = () => true;
      assert.equal(await store().recover('ep_1', 2000, 3000, 70_000, any), 1, 'seq 2 only: 1 and 4 are outside, 3 succeeded');
      const rows = await all(store(), 'ep_1');
      assert.deepEqual(rows.map((d) => d.status), ['failed', 'pending', 'succeeded', 'failed']);
      assert.deepEqual([rows[1]!.nextAttemptAt, rows[1]!.finalAttempt], [70_000, true]);
      assert.equal((await all(store(), 'ep_2'))[0]!.status, 'failed', 'other endpoints untouched');
      assert.equal(await store().recover('ep_1', 0, 10_000, 80_000, any), 2);
    });

    it('recovers only the channels the caller wants, asking once per channel', async () => {
      await create('a:1', 2, [delivery('ep_1', 1, 1000, 'a:1'), delivery('ep_1', 2, 1000, 'a:1')]);
      await create('b:1', 1, [delivery('ep_1', 1, 1000, 'b:1')]);
      await create('c:1', 1, [delivery('ep_1', 1, 1000, 'c:1')]);
      for (const d of await all(store(), 'ep_1')) await store().recordAttempt(outcome(d, { at: 9000, statusCode: 500, status: 'failed' }));
      const asked: string[] = [];
      const wanted = (channel: string) => (asked.push(channel), channel !== 'b:1');
      assert.equal(await store().recover('ep_1', 0, 10_000, 70_000, wanted), 3);
      assert.deepEqual(asked.sort(), ['a:1', 'b:1', 'c:1']);
      const byChannel = Object.fromEntries((await all(store(), 'ep_1')).map((d) => [`${d.channel}/${d.seq}`, d.status]));
      assert.deepEqual(byChannel, { 'a:1/1': 'pending', 'a:1/2': 'pending', 'b:1/1': 'failed', 'c:1/1': 'pending' });
      assert.equal(await store().recover('ep_1', 0, 10_000, 80_000, () => false), 0);
    });
  });
}
