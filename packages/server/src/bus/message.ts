import type { HeraldEvent } from '@herald/protocol';

/**
 * What travels between nodes: one channel's batch from one node, with the
 * events themselves, or only the first and last seq (a hint) when they do
 * not fit in one message and the receiver reads them from the log.
 */
export interface BusMessage {
  node: string;
  /** The sender's cluster (its store's id); absent from a node of a version from before it. */
  cluster?: string;
  channel: string;
  events?: readonly HeraldEvent[];
  hint?: [number, number];
}

interface Wire {
  n: string;
  k?: string;
  c: string;
  e?: readonly HeraldEvent[];
  h?: [number, number];
}

export function encodeMessage(
  sender: { node: string; cluster?: string | undefined },
  channel: string,
  events: readonly HeraldEvent[] | undefined,
  hint?: [number, number],
): string {
  const from: Pick<Wire, 'n' | 'k'> = sender.cluster === undefined ? { n: sender.node } : { n: sender.node, k: sender.cluster };
  const wire: Wire = events ? { ...from, c: channel, e: events } : { ...from, c: channel, h: hint! };
  return JSON.stringify(wire);
}

/** Undefined for anything that is not a message of ours. */
export function decodeMessage(raw: string): BusMessage | undefined {
  let wire: Partial<Wire>;
  try {
    wire = JSON.parse(raw) as Partial<Wire>;
  } catch {
    return undefined;
  }
  if (typeof wire !== 'object' || wire === null || typeof wire.n !== 'string' || typeof wire.c !== 'string') return undefined;
  const from = typeof wire.k === 'string' ? { node: wire.n, cluster: wire.k } : { node: wire.n };
  if (Array.isArray(wire.e) && wire.e.length > 0) return { ...from, channel: wire.c, events: wire.e };
  const h = wire.h;
  if (Array.isArray(h) && Number.isInteger(h[0]) && Number.isInteger(h[1]) && h[0] >= 1 && h[1] >= h[0]) {
    return { ...from, channel: wire.c, hint: [h[0], h[1]] };
  }
  return undefined;
}
