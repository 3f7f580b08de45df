import { monotonicFactory } from 'ulidx';

const nextUlid = monotonicFactory();

/** `evt_` + a ULID: sortable by creation time, unique without coordination. */
export function newEventId(): string {
  return `evt_${nextUlid()}`;
}
