import { context, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { VERSION } from '../version.js';
import { formatTraceparent, parseTraceparent, traceparentOfPayload } from './traceparent.js';

/**
 * OpenTelemetry spans through `@opentelemetry/api` only. Without a tracer provider registered by the application (an
 * OpenTelemetry SDK), none is made (see {@link tracingOn}); with one, Herald emits `herald.publish`, `herald.append`,
 * `herald.fanout`, `herald.ingest.verify` and `herald.delivery.attempt`, parented on the `traceparent` that came with
 * the event.
 */
const tracer = () => trace.getTracer('herald', VERSION);

/** What the API's proxy provider hands out while no SDK has registered a provider behind it. */
const NO_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether an application registered a tracer provider. Without one, every span would be a no-op that still costs
 * its allocations, contexts and the API's checks of the parent span's ids: about 3% of a single publish's CPU in a
 * profile of `bench:publish`. So spans are made only with a provider; a provider registered by another copy
 * of the API (not this package's proxy) counts as one.
 */
export function tracingOn(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_PROVIDER;
}

/** The context whose parent is the remote span named by `traceparent`, or the active one. */
export function parentContext(traceparent: string | undefined): Context {
  const parsed = traceparent === undefined ? undefined : parseTraceparent(traceparent);
  if (!parsed) return context.active();
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parsed.traceId,
    spanId: parsed.spanId,
    traceFlags: parsed.flags & TraceFlags.SAMPLED,
    isRemote: true,
  });
}

export type SpanName = 'herald.publish' | 'herald.append' | 'herald.fanout' | 'herald.ingest.verify' | 'herald.delivery.attempt';

/** Runs `fn` in a span (a child of `parent`), ending it when `fn` settles; an error marks the span and is rethrown. */
export async function inSpan<T>(
  name: SpanName,
  parent: Context,
  attributes: Attributes,
  fn: (span: Span, ctx: Context) => Promise<T> | T,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  const span = tracer().startSpan(name, { kind, attributes }, parent);
  const ctx = trace.setSpan(parent, span);
  try {
    return await context.with(ctx, () => fn(span, ctx));
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    throw error;
  } finally {
    span.end();
  }
}

/** A synchronous span, for the fan-out and the ingest's verification: `fn` alone while no provider records spans. */
export function inSpanSync<T>(name: SpanName, parent: () => Context, attributes: () => Attributes, fn: () => T): T {
  if (!tracingOn()) return fn();
  const span = tracer().startSpan(name, { attributes: attributes() }, parent());
  try {
    return fn();
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    throw error;
  } finally {
    span.end();
  }
}

/** The `traceparent` for what a span calls out to: the span itself when it records, else `fallback`. */
export function traceparentFor(span: Span, fallback: string | undefined): string | undefined {
  if (!span.isRecording()) return fallback;
  const sc = span.spanContext();
  return formatTraceparent({ traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags });
}

export { SpanKind, SpanStatusCode, type Span, type Context };

/** The spans of one publish (see {@link PublishTrace}), or none while no provider records spans. */
export interface PublishSpans {
  /** The `traceparent` to keep with the events: the incoming one, else the publish span's when it records. */
  readonly traceparent: string | undefined;
  /** The append is durable. */
  appended(): void;
  fanout<T>(events: number, fn: () => T): T;
  end(error?: unknown): void;
}

/** A publish's spans when no provider records them: the incoming `traceparent` is kept, nothing else is made. */
class Untraced implements PublishSpans {
  constructor(readonly traceparent: string | undefined) {}
  appended(): void {}
  fanout<T>(_events: number, fn: () => T): T {
    return fn();
  }
  end(): void {}
}

export function publishSpans(incoming: string | undefined, attributes: () => Attributes): PublishSpans {
  return tracingOn() ? new PublishTrace(incoming, attributes()) : new Untraced(incoming);
}

/**
 * The spans of one publish: `herald.publish`, with `herald.append` (until the
 * events are durable) and `herald.fanout` (the local listeners) inside it.
 */
class PublishTrace implements PublishSpans {
  /** The `traceparent` to keep with the events: the incoming one, else the publish span's when it records. */
  readonly traceparent: string | undefined;
  private readonly publish: Span;
  private readonly ctx: Context;
  private append: Span | undefined;

  constructor(incoming: string | undefined, attributes: Attributes) {
    const parent = parentContext(incoming);
    this.publish = tracer().startSpan('herald.publish', { kind: SpanKind.SERVER, attributes }, parent);
    this.ctx = trace.setSpan(parent, this.publish);
    this.append = tracer().startSpan('herald.append', {}, this.ctx);
    this.traceparent = incoming ?? traceparentFor(this.publish, undefined);
  }

  /** The append is durable. */
  appended(): void {
    this.append?.end();
    this.append = undefined;
  }

  fanout<T>(events: number, fn: () => T): T {
    return inSpanSync('herald.fanout', () => this.ctx, () => ({ 'herald.events': events }), fn);
  }

  end(error?: unknown): void {
    if (error !== undefined) {
      const status = { code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) };
      this.append?.setStatus(status);
      this.publish.setStatus(status);
    }
    this.appended();
    this.publish.end();
  }
}

/**
 * One outbound attempt in a `herald.delivery.attempt` span (kind CLIENT),
 * parented on the event's `meta.traceparent`. `fn` gets the `traceparent` to
 * send: the span's own when a tracer records, else the event's as it came.
 */
export async function deliveryAttemptSpan<T extends { statusCode?: number | undefined; error?: string | undefined }>(
  payload: string | undefined,
  attributes: Attributes,
  fn: (traceparent: string | undefined) => Promise<T>,
): Promise<T> {
  const stored = traceparentOfPayload(payload);
  if (!tracingOn()) return fn(stored);
  return inSpan(
    'herald.delivery.attempt',
    parentContext(stored),
    attributes,
    async (span) => {
      const sent = await fn(traceparentFor(span, stored));
      if (sent.statusCode !== undefined) span.setAttribute('http.response.status_code', sent.statusCode);
      if (sent.error !== undefined || (sent.statusCode ?? 0) >= 300) span.setStatus({ code: SpanStatusCode.ERROR, message: sent.error ?? `HTTP ${sent.statusCode}` });
      return sent;
    },
    SpanKind.CLIENT,
  );
}
