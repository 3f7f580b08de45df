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
