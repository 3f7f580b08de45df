import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { VERSION } from '../version.js';
import { formatTraceparent, parseTraceparent, traceparentOfPayload } from './traceparent.js';

/**
 * OpenTelemetry spans through `@opentelemetry/api` only. Without a tracer
 * provider registered by the application (an OpenTelemetry SDK), every call
 * here is the API's no-op and costs a small allocation; with one, Herald
 * emits `herald.publish`, `herald.append`, `herald.fanout`,
 * `herald.ingest.verify` and `herald.delivery.attempt`, parented on the
 * `traceparent` that came with the event.
 */
const tracer = () => trace.getTracer('herald', VERSION);

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

/** A synchronous span, for the fan-out. */
export function inSpanSync<T>(name: SpanName, parent: Context, attributes: Attributes, fn: () => T): T {
  const span = tracer().startSpan(name, { attributes }, parent);
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

/**
 * The spans of one publish: `herald.publish`, with `herald.append` (until the
 * events are durable) and `herald.fanout` (the local listeners) inside it.
 */
export class PublishTrace {
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
    return inSpanSync('herald.fanout', this.ctx, { 'herald.events': events }, fn);
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
