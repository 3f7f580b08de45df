// A fan-out load generator in its own process (forked by bench/fanout.ts and bench/fanout-scale.ts): it opens
// its share of the subscribers, stamps every event it receives with its publish→receive latency, and answers
// the parent over IPC. A process here may hold at most 20,000 open files, so large runs fork several of these.
import { randomBytes } from 'node:crypto';
import { request, Agent, type ClientRequest } from 'node:http';

export type PeerKind = 'herald' | 'bare' | 'nchan';
export type Transport = 'sse' | 'ws';

export interface LoadPlan {
  kind: PeerKind;
  transport: Transport;
  /** The peer's base URL, http://host:port. */
  base: string;
  token: string;
  /** One entry per socket: the channels it subscribes to (SSE and the bare server: exactly one). */
  sockets: string[][];
}

/** `connect` opens the sockets from `from` to `to` (fractions of the plan), so memory can be read half way. */
export type ToChild =
  | { type: 'connect'; plan: LoadPlan; from: number; to: number }
  | { type: 'report'; expected: Record<string, number> }
  | { type: 'reset' }
  | { type: 'close' };

export interface LoadReport {
  received: number;
  /** Sockets that got fewer events than were published to their channels, and sockets that got more. */
  short: number;
  over: number;
  /** Herald WebSocket subscribers of one channel: events whose seq was not the one after the previous event's. */
  disorder: number;
  /** Latency histogram: bucket (see bucketOf) → count, only the buckets in use. */
  histogram: Record<number, number>;
}

export type ToParent =
  | { type: 'connected'; sockets: number }
  | { type: 'progress'; received: number }
  | { type: 'report'; report: LoadReport }
  | { type: 'reset' }
  | { type: 'failed'; message: string };

/** Latency buckets: 0.1 ms wide up to 1 s, then 1 ms wide up to 10 minutes. */
const FINE_BUCKETS = 10_000;
const MAX_BUCKET = FINE_BUCKETS + 600_000;
const bucketOf = (ms: number) => (ms < 1000 ? Math.max(0, Math.round(ms * 10)) : Math.min(MAX_BUCKET, FINE_BUCKETS + Math.round(ms - 1000)));
const msOf = (bucket: number) => (bucket < FINE_BUCKETS ? bucket / 10 : 1000 + bucket - FINE_BUCKETS);
const STAMP = Buffer.from('"t":');

const SEQ = Buffer.from('"seq":');

/** The publish stamp (`"t":<epoch ms>`) of one frame, from its bytes: no JSON parse, so the client stays cheap. */
export function stampOf(bytes: Buffer, from = 0): number | undefined {
  const at = bytes.indexOf(STAMP, from);
  if (at < 0) return undefined;
  return parseFloat(bytes.toString('latin1', at + 4, at + 30));
}

/** A Herald event frame's `"seq":<n>`, the same way. */
function seqOf(bytes: Buffer): number | undefined {
  const at = bytes.indexOf(SEQ);
  if (at < 0) return undefined;
  return parseInt(bytes.toString('latin1', at + 6, at + 24), 10);
}

const now = () => performance.timeOrigin + performance.now();

class Tally {
  received = 0;
  disorder = 0;
  readonly histogram = new Uint32Array(MAX_BUCKET + 1);
  readonly perSocket: number[] = [];
  private readonly lastSeq: number[] = [];

  stamp(socket: number, t: number): void {
    this.received += 1;
    this.perSocket[socket] = (this.perSocket[socket] ?? 0) + 1;
    this.histogram[bucketOf(now() - t)]! += 1;
  }

  /** A single-channel subscriber's next seq: one more than the last, from 1. */
  sequence(socket: number, seq: number): void {
    if (seq !== (this.lastSeq[socket] ?? 0) + 1) this.disorder += 1;
    this.lastSeq[socket] = seq;
  }

  /** Forgets the latencies so far (a warm-up's); counts and order checks go on. */
  resetLatency(): void {
    this.histogram.fill(0);
  }

  report(sockets: string[][], expected: Record<string, number>): LoadReport {
    let short = 0;
    let over = 0;
    sockets.forEach((channels, i) => {
      const want = channels.reduce((sum, c) => sum + (expected[c] ?? 0), 0);
      const got = this.perSocket[i] ?? 0;
      if (got < want) short += 1;
      if (got > want) over += 1;
    });
    const histogram: Record<number, number> = {};
    this.histogram.forEach((count, bucket) => {
      if (count > 0) histogram[bucket] = count;
    });
    return { received: this.received, short, over, disorder: this.disorder, histogram };
  }
}

/** Merges the children's histograms and reads percentiles off them, in ms. */
export function percentiles(histograms: Array<Record<number, number>>, ps: number[]): number[] {
  const merged = new Map<number, number>();
  for (const h of histograms) for (const [bucket, count] of Object.entries(h)) merged.set(Number(bucket), (merged.get(Number(bucket)) ?? 0) + count);
  const buckets = [...merged.keys()].sort((a, b) => a - b);
  const total = [...merged.values()].reduce((a, b) => a + b, 0);
  return ps.map((p) => {
    const rank = Math.ceil(total * p);
    let seen = 0;
    for (const b of buckets) {
      seen += merged.get(b)!;
      if (seen >= rank) return msOf(b);
    }
    return NaN;
  });
}

interface Closable {
  close(): void;
}

const agent = new Agent({ keepAlive: true, maxSockets: 25_000 });

function sseUrl(plan: LoadPlan, channel: string): string {
  if (plan.kind === 'herald') return `${plan.base}/v1/channels/${channel}/stream?token=${plan.token}`;
  if (plan.kind === 'nchan') return `${plan.base}/sse/${channel}`;
  return `${plan.base}/sse`;
}

function subscribeSse(plan: LoadPlan, index: number, tally: Tally): Promise<Closable> {
  const channel = plan.sockets[index]![0]!;
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(sseUrl(plan, channel), { agent, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE subscribe: HTTP ${res.statusCode}`));
      let pending: Buffer | undefined;
      res.on('data', (chunk: Buffer) => {
        let buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
        let start = 0;
        let end: number;
        while ((end = buffer.indexOf('\n\n', start)) >= 0) {
          const t = stampOf(buffer.subarray(start, end));
          if (t !== undefined) tally.stamp(index, t);
          start = end + 2;
        }
        buffer = buffer.subarray(start);
        pending = buffer.length > 0 ? Buffer.from(buffer) : undefined;
      });
      resolve({ close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The peer's WebSocket endpoint, as an HTTP URL to send the upgrade request to. */
function wsUrl(plan: LoadPlan, channel: string): string {
  if (plan.kind === 'herald') return `${plan.base}/v1/ws?token=${plan.token}`;
  if (plan.kind === 'nchan') return `${plan.base}/ws/${channel}`;
  return plan.base;
}

const SUBSCRIBED = Buffer.from('{"op":"subscribed"');
const ERROR = Buffer.from('{"op":"error"');

/** A client frame (RFC 6455 §5.2): final and masked, as every client frame must be; payloads under 64 KiB. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const header = payload.length < 126 ? 2 : 4;
  const frame = Buffer.alloc(header + 4 + payload.length);
  frame[0] = 0x80 | opcode;
  if (header === 2) frame[1] = 0x80 | payload.length;
  else {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(payload.length, 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, header);
  for (let i = 0; i < payload.length; i++) frame[header + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

/**
 * One WebSocket subscriber, spoken by hand: the upgrade request, then a loop that cuts the server's frames out of
 * what the socket reads. Written out rather than with `ws`, whose per-message work (a Writable per socket,
 * buffering, events) made the load generators, which share the machine's two cores with the servers, the
 * slowest part of the measurement. Servers send small unmasked, unfragmented text frames; pings get their pong.
 */
function subscribeWs(plan: LoadPlan, index: number, tally: Tally): Promise<Closable> {
  const channels = plan.sockets[index]!;
  return new Promise((resolve, reject) => {
    const req = request(wsUrl(plan, channels[0]!), {
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': randomBytes(16).toString('base64'), 'sec-websocket-version': '13' },
    });
    req.on('response', (res) => reject(new Error(`WebSocket upgrade: HTTP ${res.statusCode}`)));
    req.on('error', reject);
    req.on('upgrade', (_res, socket, head) => {
      socket.setNoDelay(true);
      socket.on('error', reject);
      let waiting = plan.kind === 'herald' ? channels.length : 0;
      const ordered = plan.kind === 'herald' && channels.length === 1;
      const closable = { close: () => socket.destroy() };
      const onMessage = (data: Buffer) => {
        if (waiting > 0 && data.subarray(0, SUBSCRIBED.length).equals(SUBSCRIBED)) {
          if (--waiting === 0) resolve(closable);
          return;
        }
        if (data.subarray(0, ERROR.length).equals(ERROR)) return reject(new Error(data.toString()));
        const t = stampOf(data);
        if (t !== undefined) tally.stamp(index, t);
        // Event frames carry a seq; other frames (a gap, say) are not part of the order.
        const seq = ordered ? seqOf(data) : undefined;
        if (seq !== undefined) tally.sequence(index, seq);
      };
      let pending: Buffer | undefined;
      const onData = (chunk: Buffer) => {
        const buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
        let at = 0;
        for (;;) {
          if (buffer.length - at < 2) break;
          const opcode = buffer[at]! & 0x0f;
          let length = buffer[at + 1]! & 0x7f;
          let header = 2;
          if (length === 126) {
            if (buffer.length - at < 4) break;
            length = buffer.readUInt16BE(at + 2);
            header = 4;
          } else if (length === 127) {
            if (buffer.length - at < 10) break;
            length = Number(buffer.readBigUInt64BE(at + 2));
            header = 10;
          }
          if (buffer.length - at < header + length) break;
          const payload = buffer.subarray(at + header, at + header + length);
          if (opcode === 0x1 || opcode === 0x2) onMessage(payload);
          else if (opcode === 0x9) socket.write(clientFrame(0xa, payload));
          else if (opcode === 0x8) socket.destroy();
          else if (opcode === 0x0) reject(new Error('fragmented frame: the load generator reads whole frames only'));
          at += header + length;
        }
        pending = at < buffer.length ? Buffer.from(buffer.subarray(at)) : undefined;
      };
      socket.on('data', onData);
      if (head.length > 0) onData(head);
      if (plan.kind !== 'herald') return resolve(closable);
      for (const channel of channels) socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ op: 'subscribe', channel }))));
    });
    req.end();
  });
}

async function connect(plan: LoadPlan, tally: Tally, from: number, to: number): Promise<Closable[]> {
  const open: Closable[] = [];
  const subscribe = plan.transport === 'ws' ? subscribeWs : subscribeSse;
  const end = Math.round(plan.sockets.length * to);
  for (let i = Math.round(plan.sockets.length * from); i < end; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(i + 100, end); j++) batch.push(subscribe(plan, j, tally));
    open.push(...(await Promise.all(batch)));
  }
  return open;
}

/** The child's side: runs when this file is forked with an IPC channel. */
function serve(): void {
  const send = (message: ToParent) => {
    if (process.connected) process.send!(message);
  };
  const tally = new Tally();
  let plan: LoadPlan | undefined;
  const open: Closable[] = [];
  const progress = setInterval(() => send({ type: 'progress', received: tally.received }), 100);
  process.on('message', (message: ToChild) => {
    if (message.type === 'connect') {
      plan = message.plan;
      connect(plan, tally, message.from, message.to).then(
        (sockets) => {
          open.push(...sockets);
          send({ type: 'connected', sockets: sockets.length });
        },
        (error: unknown) => send({ type: 'failed', message: String(error) }),
      );
    } else if (message.type === 'reset') {
      tally.resetLatency();
      send({ type: 'reset' });
    } else if (message.type === 'report') {
      send({ type: 'report', report: tally.report(plan?.sockets ?? [], message.expected) });
    } else {
      clearInterval(progress);
      for (const socket of open) socket.close();
      agent.destroy();
      process.disconnect();
    }
  });
}

if (process.send) serve();
