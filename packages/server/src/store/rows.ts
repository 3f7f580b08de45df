// Row shapes and their mapping to records, shared by the SQLite and PostgreSQL
// backends: both keep the same columns (lists and objects as JSON text), so a
// record reads back identically whichever database holds it.
import { GENERATED_EVENT_ID_PATTERN, type DeliveryStatus, type HeraldEvent, type Provider, type Scope } from '@herald/protocol';
import type { ApiKeyRecord, AttemptRecord, DeliveryRecord, NewEvent, NodeRecord, SourceRecord, SourceSecret } from './types.js';
import { parseStoredJson, READ_DEPTH_MAX } from './stored-json.js';

let lastTime = NaN;
let lastIso = '';
/** Events of one request, and neighbours in the log, share their millisecond: format it once. */
export function isoTime(ms: number): string {
  if (ms !== lastTime) {
    lastTime = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** The event as appended, without reading it back. */
export function eventFromInput(input: NewEvent, seq: number): HeraldEvent {
  const event: HeraldEvent = { id: input.id, channel: input.channel, seq, type: input.type, data: input.data, time: isoTime(input.time) };
  if (input.meta !== undefined) event.meta = input.meta;
  return event;
}

/**
 * Whether the event's id goes in the unique index of ids: every id but one the log generated just now, which has
 * a form no publisher may choose. An id marked generated without that form is indexed like any other, so a
 * wrong mark can never let a duplicate in (the conformance suite checks both backends for it).
 */
export const indexesId = (input: NewEvent): boolean => input.generated !== true || !GENERATED_EVENT_ID_PATTERN.test(input.id);

export interface EventRow {
  seq: number;
  id: string;
  type: string;
  time: number;
  data: string;
  meta: string | null;
}

const UNREADABLE_TOO_DEEP = {
  code: 'payload_too_deep',
  message: `Stored nested deeper than ${READ_DEPTH_MAX} levels, before Herald refused such data; it cannot be served.`,
} as const;

export function eventFromRow(channel: string, row: EventRow): HeraldEvent {
  const data = parseStoredJson(row.data);
  const event: HeraldEvent = { id: row.id, channel, seq: row.seq, type: row.type, data: data.value, time: isoTime(row.time) };
  if (row.meta !== null) {
    const meta = parseStoredJson(row.meta);
    if (!meta.tooDeep) event.meta = meta.value as Record<string, unknown>;
    else data.tooDeep = true;
  }
  if (data.tooDeep) event.error = UNREADABLE_TOO_DEEP;
  return event;
}

/**
 * JSON text already made from an event's `data` or `meta`, stored as it is. The SQLite event store's thread gets
 * its events so: the publishing thread serializes them once, and the store never sees (or copies) the objects.
 */
export class SerializedJson {
  constructor(readonly text: string) {}
}

/** `data` as stored: JSON text (undefined, which JSON cannot hold, becomes null). */
export const dataText = (data: unknown): string => (data instanceof SerializedJson ? data.text : (JSON.stringify(data) ?? 'null'));
export const metaText = (meta: Record<string, unknown> | SerializedJson | undefined): string | null =>
  meta === undefined ? null : meta instanceof SerializedJson ? meta.text : JSON.stringify(meta);

export interface KeyRow {
  id: string;
  name: string;
  hash: string;
  prefix: string;
  scopes: string;
  channels: string;
  created: number;
  revoked: number | null;
}

export function keyFromRow(row: KeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    hash: row.hash,
    prefix: row.prefix,
    scopes: JSON.parse(row.scopes) as Scope[],
    channels: JSON.parse(row.channels) as string[],
    createdAt: row.created,
    revokedAt: row.revoked ?? undefined,
  };
}

export interface SourceRow {
  name: string;
  provider: string;
  channel: string;
  tolerance: number;
  secrets: string;
  created: number;
}

export function sourceFromRow(row: SourceRow): SourceRecord {
  return {
    name: row.name,
    provider: row.provider as Provider,
    channel: row.channel,
    tolerance: row.tolerance,
    secrets: JSON.parse(row.secrets) as SourceSecret[],
    createdAt: row.created,
  };
}

export interface DeliveryRow {
  n: number;
  endpoint_id: string;
  event_id: string;
  channel: string;
  seq: number;
  payload: string | null;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  /** 0/1 in SQLite, a boolean in PostgreSQL. */
  final_attempt: number | boolean;
  last_status_code: number | null;
  last_error: string | null;
  created: number;
}

export interface AttemptRow {
  delivery: number;
  at: number;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  response_body: string | null;
}

const DELIVERY_ID_PREFIX = 'dlv_';
export const deliveryId = (n: number): string => `${DELIVERY_ID_PREFIX}${n}`;
/** The row number inside a public delivery id, or -1 (matches nothing) for an id the store did not make. */
export function deliveryRowOf(id: string): number {
  const digits = id.slice(DELIVERY_ID_PREFIX.length);
  return id.startsWith(DELIVERY_ID_PREFIX) && /^\d{1,15}$/.test(digits) ? Number(digits) : -1;
}

export function deliveryFromRow(row: DeliveryRow): DeliveryRecord {
  return {
    id: deliveryId(row.n),
    endpointId: row.endpoint_id,
    eventId: row.event_id,
    channel: row.channel,
    seq: row.seq,
    payload: row.payload ?? '',
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    finalAttempt: row.final_attempt === 1 || row.final_attempt === true,
    lastStatusCode: row.last_status_code ?? undefined,
    lastError: row.last_error ?? undefined,
    createdAt: row.created,
  };
}

export function attemptFromRow(row: AttemptRow): AttemptRecord {
  return {
    deliveryId: deliveryId(row.delivery),
    at: row.at,
    statusCode: row.status_code ?? undefined,
    durationMs: row.duration_ms,
    error: row.error ?? undefined,
    responseBody: row.response_body ?? undefined,
  };
}

export interface LeaseRow {
  name: string;
  holder: string;
  expires_at: number;
}

export const leaseFromRow = (row: LeaseRow) => ({ name: row.name, holder: row.holder, expiresAt: row.expires_at });

export interface NodeRow {
  id: string;
  started_at: number;
  last_seen: number;
  connections: string;
  version: string;
  bus: string;
  admin_key: string;
}

export function nodeFromRow(row: NodeRow): NodeRecord {
  return {
    id: row.id,
    startedAt: row.started_at,
    lastSeen: row.last_seen,
    connections: JSON.parse(row.connections) as Record<string, number>,
    version: row.version,
    bus: row.bus === 'down' ? 'down' : 'up',
    adminKey: row.admin_key === 'config' ? 'config' : 'store',
  };
}
