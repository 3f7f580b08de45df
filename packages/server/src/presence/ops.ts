import { HeraldError, type ClientOp } from '@herald/protocol';
import { frameChannel } from '../http/channels.js';

/** Client ids are `cl_` and 16 base64url characters; anything near that shape is accepted, longer is not. */
const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** `subscribe`'s `presence`: absent, or an object with an optional `info` (its size is checked on joining). */
export function presenceOf(value: unknown): { info?: unknown } | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HeraldError('bad_request', '`presence` must be an object, `{}` or `{"info": …}`.');
  }
  const info = (value as { info?: unknown }).info;
  return info === undefined ? {} : { info };
}

/** `publish`'s `ephemeral`: true, false or absent; an ephemeral publish has no `id` (nothing is logged to dedupe). */
export function isEphemeral(frame: Record<string, unknown>): boolean {
  if (frame.ephemeral === undefined || frame.ephemeral === false) return false;
  if (frame.ephemeral !== true) throw new HeraldError('bad_request', '`ephemeral` must be a boolean.');
  if (frame.id !== undefined) throw new HeraldError('bad_request', 'An ephemeral publish has no `id`: nothing is logged.');
  if (frame.meta !== undefined) throw new HeraldError('bad_request', 'An ephemeral publish has no `meta`: nothing is logged.');
  return true;
}

/** `{op: "send", channel, to, data, ref}`. */
export function parseSend(frame: Record<string, unknown>, ref: string | undefined): ClientOp {
  if (ref === undefined) throw new HeraldError('bad_request', '`send` needs a `ref` to acknowledge.');
  const channel = frameChannel(frame);
  if (typeof frame.to !== 'string' || !CLIENT_ID.test(frame.to)) throw new HeraldError('bad_request', '`send` needs `to`: the client id of a presence member.');
  if (!('data' in frame)) throw new HeraldError('bad_request', '`send` needs `data`.');
  return { op: 'send', channel, to: frame.to, data: frame.data, ref };
}
