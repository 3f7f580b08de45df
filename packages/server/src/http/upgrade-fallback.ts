import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** Node's answer being written on a connection (`socket._httpMessage`), if any. */
const answering = (socket: Duplex) => (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;

/**
 * Serves a request that asked to upgrade to a protocol Herald does not speak as the ordinary HTTP/1.1 request it
 * also is. RFC 9110 §7.8: a server may ignore `Upgrade` and answer in the current protocol, and RFC 9113 §3.2 (h2c)
 * expects exactly that of a server without HTTP/2. Node, once the server has an `upgrade` listener (the WebSocket
 * gateway's), hands it every request with `Connection: upgrade`, whatever it names, and stops parsing the
 * connection: `curl --http2 http://…`, or Java's HttpClient on an http:// URL (`Upgrade: h2c`), got the gateway's
 * 404 for every route. Node 20 has no option to decline an upgrade (`shouldUpgradeCallback` is newer), so the
 * request is parsed again: its head, written back without the `Upgrade` field, and the bytes that followed it
 * (its body, pipelined requests) go back in front of the socket, which the server then takes as a new connection.
 * Its body, keep-alive and the requests after it work as on any connection. When earlier requests pipelined on the
 * connection are still being answered, that waits for their answers: the new connection's would otherwise queue
 * behind an answer whose end only the old one hears, and never be sent.
 */
export function serveAsHttp(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    // Without `Upgrade` Node's parser sees no upgrade, whatever `Connection` lists.
    if (raw[i]!.toLowerCase() !== 'upgrade') lines.push(`${raw[i]}: ${raw[i + 1]}`);
  }
  // Node read header bytes as Latin-1 (rawHeaders), so they are written back byte for byte.
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  // Until then nothing reads the socket: Node stopped at the upgrade, and left the stream neither flowing nor paused.
  const parseAgain = (): void => {
    if (socket.destroyed) return;
    const earlier = answering(socket);
    if (earlier) earlier.once('close', parseAgain);
    else server.emit('connection', socket);
  };
  parseAgain();
}
