// A webhook receiver for bench:deliver: verifies every Standard Webhooks signature (secret in SINK_SECRET,
// given later by PUT /secret), counts deliveries and publish→delivered latency. Prints its URL on stdout.
import { createServer } from 'node:http';
import { verify } from '@herald/webhooks';

let secret = process.env.SINK_SECRET ?? '';
let latencies: number[] = [];
let failures = 0;
const ids = new Set<string>();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (req.method === 'GET') {
      latencies.sort((a, b) => a - b);
      const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: ids.size, failures, p50: pct(0.5), p99: pct(0.99) }));
      return;
    }
    if (req.method === 'PUT') {
      secret = body.toString();
      latencies = [];
      failures = 0;
      ids.clear();
      res.writeHead(204).end();
      return;
    }
    try {
      const { id } = verify('standard', { secret, headers: req.headers, body });
      const event = JSON.parse(body.toString()) as { data?: { t?: number }; t?: number };
      const t = event.data?.t ?? event.t;
      if (t !== undefined) latencies.push(performance.timeOrigin + performance.now() - t);
      ids.add(id!);
      res.writeHead(204).end();
    } catch {
      failures += 1;
      res.writeHead(401).end();
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`http://127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
