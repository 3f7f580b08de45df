// The floor for fan-out: node:http + ws, no log, no auth. GET /sse holds an event stream,
// /ws upgrades, POST /publish writes the body to every subscriber of both. Prints its URL on stdout.
import { createServer, type ServerResponse } from 'node:http';
import { WebSocketServer } from 'ws';

const streams = new Set<ServerResponse>();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
let seq = 0;

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url?.startsWith('/sse')) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.write('retry: 2000\n\n');
    streams.add(res);
    res.on('close', () => streams.delete(res));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    seq += 1;
    const sse = Buffer.from(`id: ${seq}\ndata: ${body}\n\n`);
    for (const s of streams) s.write(sse);
    const frame = Buffer.from(body);
    for (const client of wss.clients) client.send(frame, { binary: false });
    res.writeHead(201, { 'content-type': 'application/json' }).end(`{"seq":${seq}}`);
  });
});
server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`http://127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
