// OpenTelemetry spans through the real server: none while no tracer provider is registered, every documented span
// once one is. The provider here records what Herald asks of the API (@opentelemetry/api's TracerProvider contract):
// the SDK's own packages need Node 22, and the API is all Herald depends on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  context,
  trace,
  SpanKind,
  type Attributes,
  type AttributeValue,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { generateSecret, sign } from '@herald/webhooks';
import { tracingOn } from '../src/tracing/index.js';
import { startTestServer, until, type TestServer } from './helpers.js';

const INCOMING_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const INCOMING_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01`;

interface Recorded {
  name: string;
  kind: SpanKind;
  attributes: Attributes;
  context: SpanContext;
  parentSpanId: string | undefined;
  status: SpanStatus | undefined;
  ended: boolean;
}

class RecordingSpan implements Span {
  constructor(readonly record: Recorded) {}
  spanContext(): SpanContext {
    return this.record.context;
  }
  setAttribute(key: string, value: AttributeValue): this {
    this.record.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.record.attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.record.status = status;
    return this;
  }
  updateName(name: string): this {
    this.record.name = name;
    return this;
  }
  end(): void {
    this.record.ended = true;
  }
  isRecording(): boolean {
    return !this.record.ended;
  }
  recordException(): void {}
}

class RecordingTracer implements Tracer {
  constructor(private readonly spans: Recorded[]) {}
  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    const parent = trace.getSpanContext(ctx);
    const record: Recorded = {
      name,
      kind: options.kind ?? SpanKind.INTERNAL,
      attributes: { ...options.attributes },
      context: { traceId: parent?.traceId ?? randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: 1 },
      parentSpanId: parent?.spanId,
      status: undefined,
      ended: false,
    };
    this.spans.push(record);
    return new RecordingSpan(record);
  }
  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...rest: unknown[]): ReturnType<F> {
    const fn = rest.at(-1) as F;
    const options = (rest.length > 1 ? rest[0] : undefined) as SpanOptions | undefined;
    const ctx = (rest.length > 2 ? rest[1] : undefined) as Context | undefined;
    const span = this.startSpan(name, options, ctx);
    return context.with(trace.setSpan(ctx ?? context.active(), span), () => fn(span)) as ReturnType<F>;
  }
}

class RecordingProvider implements TracerProvider {
  readonly spans: Recorded[] = [];
  getTracer(): Tracer {
    return new RecordingTracer(this.spans);
  }
}

describe('tracing: OpenTelemetry spans through the real server', () => {
  let h: TestServer;
  let receiver: Server;
  let receiverUrl = '';
  const received: IncomingHttpHeaders[] = [];
  const secret = generateSecret();
  const provider = new RecordingProvider();

  before(async () => {
    h = await startTestServer({ delivery: { allowPrivateNetworks: ['127.0.0.0/8'], jitter: 0 } });
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(req.headers);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    assert.equal((await h.call('POST', '/v1/sources', { body: { name: 'std', provider: 'standard', secrets: [secret], channel: 'in:std' } })).status, 201);
  });

  after(async () => {
    trace.disable();
    await h.stop();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  const publish = (channel: string, headers: Record<string, string> = {}) =>
    h.call('POST', `/v1/channels/${channel}/events`, { body: { data: { n: 1 } }, headers });

  it('makes no span while no tracer provider is registered, and still keeps the incoming traceparent', async () => {
    const traced = await publish('quiet', { traceparent: TRACEPARENT });
    assert.equal(traced.status, 201);
    assert.equal(traced.body.meta.traceparent, TRACEPARENT);
    const plain = await publish('quiet');
    assert.equal(plain.body.meta, undefined, 'no publish span to name');
    assert.equal(tracingOn(), false);
    // Registered only now: a span made before would have gone to the API's no-op tracer, not to this provider.
    assert.ok(trace.setGlobalTracerProvider(provider));
    assert.equal(tracingOn(), true);
    assert.deepEqual(provider.spans, []);
  });

  it('with a provider: herald.publish parented on the incoming traceparent, with herald.append and herald.fanout inside', async () => {
    provider.spans.length = 0;
    const published = await publish('traced', { traceparent: TRACEPARENT });
    assert.equal(published.status, 201);
    assert.equal(published.body.meta.traceparent, TRACEPARENT, 'the incoming traceparent is what the event keeps');
    const [span] = provider.spans.filter((s) => s.name === 'herald.publish');
    assert.ok(span, 'a herald.publish span');
    assert.equal(span.kind, SpanKind.SERVER);
    assert.equal(span.context.traceId, INCOMING_TRACE);
    assert.equal(span.parentSpanId, INCOMING_SPAN);
    assert.deepEqual(span.attributes, { 'herald.via': 'http', 'herald.events': 1 });
    assert.ok(span.ended);
    for (const name of ['herald.append', 'herald.fanout']) {
      const inner = provider.spans.find((s) => s.name === name);
      assert.ok(inner, name);
      assert.equal(inner.parentSpanId, span.context.spanId, `${name} is inside herald.publish`);
      assert.ok(inner.ended, `${name} ended`);
    }
    assert.deepEqual(provider.spans.find((s) => s.name === 'herald.fanout')!.attributes, { 'herald.events': 1 });
  });

  it('with a provider: an event published without a traceparent keeps its publish span\'s', async () => {
    provider.spans.length = 0;
    const published = await publish('untraced');
    const span = provider.spans.find((s) => s.name === 'herald.publish')!;
    assert.equal(published.body.meta.traceparent, `00-${span.context.traceId}-${span.context.spanId}-01`);
    assert.equal(span.parentSpanId, undefined, 'a root span');
  });

  it('with a provider: herald.ingest.verify for a signed webhook, parented on its traceparent', async () => {
    provider.spans.length = 0;
    const body = JSON.stringify({ type: 'thing.happened', n: 1 });
    const res = await fetch(`${h.url}/v1/ingest/std`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: TRACEPARENT, ...sign('standard', { secret, body, id: 'msg_trace_1' }) },
      body,
    });
    assert.equal(res.status, 200);
    const verify = provider.spans.find((s) => s.name === 'herald.ingest.verify');
    assert.ok(verify, 'a herald.ingest.verify span');
    assert.equal(verify.parentSpanId, INCOMING_SPAN);
    assert.deepEqual(verify.attributes, { 'herald.provider': 'standard' });
  });

  it('with a provider: herald.delivery.attempt (CLIENT) names itself in the delivery\'s traceparent header', async () => {
    assert.equal((await h.call('POST', '/v1/endpoints', { body: { url: receiverUrl, channels: ['delivered'] } })).status, 201);
    provider.spans.length = 0;
    await publish('delivered', { traceparent: TRACEPARENT });
    await until(() => provider.spans.some((s) => s.name === 'herald.delivery.attempt' && s.ended), 10_000, 'a delivery attempt span');
    const attempt = provider.spans.find((s) => s.name === 'herald.delivery.attempt')!;
    assert.equal(attempt.kind, SpanKind.CLIENT);
    assert.equal(attempt.context.traceId, INCOMING_TRACE);
    assert.equal(attempt.parentSpanId, INCOMING_SPAN);
    assert.equal(attempt.attributes['http.response.status_code'], 204);
    assert.equal(received.at(-1)!.traceparent, `00-${INCOMING_TRACE}-${attempt.context.spanId}-01`);
  });

  it('makes no span again once the provider is gone', async () => {
    trace.disable();
    assert.equal(tracingOn(), false);
    provider.spans.length = 0;
    const published = await publish('after', { traceparent: TRACEPARENT });
    assert.equal(published.body.meta.traceparent, TRACEPARENT);
    assert.deepEqual(provider.spans, []);
  });
});
