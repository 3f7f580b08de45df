import { EVENT_ID_PATTERN, SCOPES } from '@herald/protocol';
import { MAX_PATTERN_LENGTH, PATTERN_SCHEMA_REGEX } from '../auth/patterns.js';

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
  items: { type: 'string', minLength: 1, maxLength: MAX_PATTERN_LENGTH, pattern: PATTERN_SCHEMA_REGEX },
} as const;

export const scopeList = {
  type: 'array',
  minItems: 1,
  uniqueItems: true,
  items: { type: 'string', enum: SCOPES },
} as const;

/**
 * The stored event, for response serialization (fast-json-stringify writes
 * known fields without reflection). `data` is optional: a replay answer
 * leaves it out for a caller that may not read the channel.
 */
export const eventSchema = {
  type: 'object',
  required: ['id', 'channel', 'seq', 'type', 'time'],
  properties: {
    id: { type: 'string' },
    channel: { type: 'string' },
    seq: { type: 'integer' },
    type: { type: 'string' },
    data: {},
    time: { type: 'string' },
    meta: { type: 'object', additionalProperties: true },
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;
