// A client on Node's own global WebSocket (undici's), in a process of its own: reconnect.e2e starts it with
// `--experimental-websocket`, which Node 20 needs for that global. It prints what it sees as JSON lines.
import { Herald } from '../src/index.js';

const [url, token, channel] = process.argv.slice(2) as [string, string, string];
const NodeWebSocket = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
if (!NodeWebSocket) throw new Error('no global WebSocket in this Node');
const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const c = new Herald({ url, token, WebSocket: NodeWebSocket, transports: ['websocket'], backoff: { baseMs: 50, maxMs: 300 }, heartbeatTimeoutMs: 60_000 });
c.on('state', (state) => print({ state }));
c.subscribe(channel, { after: 0 }, (event) => print({ data: event.data }));
process.stdin.on('end', () => {
  c.close();
  process.exit(0);
});
process.stdin.resume();
