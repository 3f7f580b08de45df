import type { FastifyRequest } from 'fastify';

/**
 * Calls `cancel` when the client goes away before `until` settles (at once when it has gone already), so a poll it
 * abandoned, parked or waiting for room, frees what it holds. The request is what tells: when a connection closes,
 * Node closes every request on it, but only the response being written hears it, not those of later requests
 * pipelined behind it.
 */
export function cancelOnDisconnect(request: FastifyRequest, cancel: () => void, until: Promise<unknown>): void {
  // Gone while the log was read: its close has been and gone.
  if (request.raw.destroyed) return cancel();
  request.raw.once('close', cancel);
  void until.finally(() => request.raw.off('close', cancel));
}
