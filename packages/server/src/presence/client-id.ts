import { randomBytes } from 'node:crypto';

/** A connection's id in presence sets and as the target of direct messages: random, so it says nothing. */
export function newClientId(): string {
  return `cl_${randomBytes(12).toString('base64url')}`;
}
