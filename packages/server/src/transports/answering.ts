import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Resolves true once the connection is answering `res` (Node has handed it the socket), false if the connection
 * closes first (which `req`, its request, hears: a response still waiting for the socket does not). HTTP/1.1 answers a connection's requests in the order they came, and Node gives a pipelined request's
 * response the socket only once the answer before it has finished; a stream, which never finishes, holds it for good.
 *
 * Polls and SSE streams wait for this before they take anything. Before, a poll pipelined behind an SSE stream took
 * its room in the replay budget and kept it for the stream's life, and for good once the connection closed (a response
 * never given the socket never closes): 66 such connections held the whole budget, and no poll or replay on the node
 * was served again. A stream pipelined behind a poll found no socket to write to, and stayed open, empty. Waiting
 * here holds nothing, and `limits.pipelinedRequests` bounds how many wait on one connection.
 */
export function answering(res: ServerResponse, req: IncomingMessage): Promise<boolean> {
  if (res.socket) return Promise.resolve(!res.socket.destroyed && !req.destroyed);
  if (req.destroyed) return Promise.resolve(false);
  // On the request, not the socket: up to limits.pipelinedRequests of them wait on one socket.
  return new Promise((resolve) => {
    const assigned = () => {
      req.off('close', closed);
      resolve(true);
    };
    const closed = () => {
      res.off('socket', assigned);
      resolve(false);
    };
    res.once('socket', assigned);
    req.once('close', closed);
  });
}
