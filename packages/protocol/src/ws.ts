import type { ErrorCode } from './errors.js';
import type { GapInfo } from './events.js';

/** WebSocket frames are JSON text with an `op` field. */
export type ClientOp =
  | { op: 'auth'; token: string }
  | { op: 'subscribe'; channel: string; after?: number; ref?: string }
  | { op: 'unsubscribe'; channel: string; ref?: string }
  | { op: 'publish'; channel: string; type?: string; data: unknown; id?: string; ref: string }
  | { op: 'ping' };

export type ServerOp =
  | { op: 'subscribed'; channel: string; ref?: string; seq: number; epoch: string }
  | { op: 'unsubscribed'; channel: string; ref?: string }
  | { op: 'event'; channel: string; seq: number; id: string; type: string; data: unknown; time: string; meta?: Record<string, unknown> }
  | { op: 'ack'; ref: string; seq: number; id: string }
  | ({ op: 'gap' } & GapInfo)
  | { op: 'error'; ref?: string; code: ErrorCode; message: string }
  | { op: 'authenticated' }
  | { op: 'pong' };

/** WebSocket close codes Herald uses (RFC 6455 §7.4.1 and the IANA registry). */
export const CloseCodes = {
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  tryAgainLater: 1013,
} as const;
