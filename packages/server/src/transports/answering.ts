import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';

/**
 * Resolves true once the connection is answering `res` (Node has handed it the socket), false if the connection
 * closes first. HTTP/1.1 answers a connection's requests in the order they came, and Node gives a pipelined request's
 * response the socket only once the answer before it has finished; a stream, which never finishes, holds it for good.
 *
 * Polls and SSE streams wait for this before they take anything. Before, a poll pipelined behind an SSE stream took
 * its room in the replay budget and kept it for the stream's life, and for good once the connection closed (a response
 * never given the socket never closes): 66 such connections held the whole budget, and no poll or replay on the node
 * was served again. A stream pipelined behind a poll found no socket to write to, and stayed open, empty. Waiting
 * here holds nothing, and `limits.pipelinedRequests` bounds how many wait on one connection.
 */
export function answering(res: ServerResponse, connection: Socket): Promise<boolean> {
  if (res.socket) return Promise.resolve(!res.socket.destroyed);
  if (connection.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const assigned = () => {
      connection.off('close', closed);
      resolve(true);
    };
    const closed = () => {
      res.off('socket', assigned);
      resolve(false);
    };
    res.once('socket', assigned);
    connection.once('close', closed);
  });
}
