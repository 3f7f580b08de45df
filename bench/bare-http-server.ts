// The floor for the publish benchmark: node:http parsing the same JSON POST and answering with an event,
// with no storage, auth or validation. Prints its URL on stdout.
import { createServer } from 'node:http';

let seq = 0;
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type?: string; data?: unknown; events?: Array<{ channel: string; data: unknown }> };
    const time = new Date().toISOString();
    const reply = body.events
      ? { events: body.events.map((e) => ({ id: `evt_${++seq}`, channel: e.channel, seq, type: 'message', data: e.data, time })) }
      : { id: `evt_${++seq}`, channel: 'bench', seq, type: body.type ?? 'message', data: body.data, time };
    const json = JSON.stringify(reply);
    res.writeHead(201, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`http://127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
