import { EVENT_ID_PATTERN, SCOPES } from '@herald/protocol';

/** JSON schemas shared by several routes. */
export const eventInputProperties = {
  type: { type: 'string', minLength: 1, maxLength: 128 },
  data: {},
  id: { type: 'string', pattern: EVENT_ID_PATTERN.source },
  meta: { type: 'object' },
} as const;

export const channelPatternList = {
  type: 'array',
  maxItems: 100,
  items: { type: 'string', pattern: '^[A-Za-z0-9_.:*-]{1,128}$' },
} as const;

export const scopeList = {
  type: 'array',
  minItems: 1,
  uniqueItems: true,
  items: { type: 'string', enum: SCOPES },
} as const;

/** The stored event, for response serialization (fast-json-stringify writes known fields without reflection). */
export const eventSchema = {
  type: 'object',
  required: ['id', 'channel', 'seq', 'type', 'data', 'time'],
  properties: {
    id: { type: 'string' },
    channel: { type: 'string' },
    seq: { type: 'integer' },
    type: { type: 'string' },
    data: {},
    time: { type: 'string' },
    meta: { type: 'object', additionalProperties: true },
  },
} as const;
