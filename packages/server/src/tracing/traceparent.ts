/**
 * W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/):
 * `version-traceid-parentid-flags`, lower-case hex. An invalid value is
 * ignored, as the spec asks, never an error.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export interface TraceParent {
  traceId: string;
  spanId: string;
  flags: number;
}

export function parseTraceparent(value: unknown): TraceParent | undefined {
  if (typeof value !== 'string' || value.length < 55 || value.length > 512) return undefined;
  const m = TRACEPARENT.exec(value);
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  // Version ff is forbidden; version 00 has exactly four fields; later versions may append more.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId: traceId!, spanId: spanId!, flags: parseInt(flags!, 16) };
}

/** The version-00 header for a trace context. */
export function formatTraceparent(tp: TraceParent): string {
  return `00-${tp.traceId}-${tp.spanId}-${(tp.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** A valid `traceparent` normalized to version 00, or undefined. */
export function normalizeTraceparent(value: unknown): string | undefined {
  const parsed = parseTraceparent(value);
  return parsed && formatTraceparent(parsed);
}

/**
 * Keeps the trace context with the event as `meta.traceparent`. A caller's
 * own `meta` is never replaced: the key is added to a copy, and a
 * `traceparent` the caller put in `meta` itself wins over the header.
 */
export function withTraceparent(meta: Record<string, unknown> | undefined, traceparent: string | undefined): Record<string, unknown> | undefined {
  if (traceparent === undefined) return meta;
  if (meta && normalizeTraceparent(meta.traceparent) !== undefined) return meta;
  return { ...meta, traceparent };
}

/**
 * The `traceparent` kept with a delivery's event, read from its payload.
 * Most payloads carry none: those cost one substring search.
 */
export function traceparentOfPayload(payload: string | null | undefined): string | undefined {
  if (!payload || !payload.includes('"traceparent"')) return undefined;
  try {
    const event = JSON.parse(payload) as { meta?: { traceparent?: unknown } };
    return normalizeTraceparent(event.meta?.traceparent);
  } catch {
    return undefined;
  }
}
