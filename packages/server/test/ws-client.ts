import { WebSocket, type ClientOptions } from 'ws';
import { until } from './helpers.js';

/** A test client: every frame it receives, and how it closed. */
export class WsTestClient {
  readonly frames: any[] = [];
  closed: { code: number; reason: string } | undefined;
  readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(url: string, options: ClientOptions = {}) {
    this.ws = new WebSocket(url, options);
    this.ws.on('message', (data) => this.frames.push(JSON.parse(data.toString())));
    this.ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      this.ws.once('error', reject);
    });
  }

  send(op: unknown): void {
    this.ws.send(JSON.stringify(op));
  }

  /** A text frame as written: JSON that JSON.stringify could not make (`1e400`), or that is not JSON at all. */
  sendRaw(text: string): void {
    this.ws.send(text);
  }

  ops(name: string): any[] {
    return this.frames.filter((f) => f.op === name);
  }

  async next(name: string, count = 1, timeoutMs = 5000): Promise<any[]> {
    await until(() => this.ops(name).length >= count, timeoutMs, `${count} × ${name}`);
    return this.ops(name);
  }

  async closedWith(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    await until(() => this.closed !== undefined, timeoutMs, 'close');
    return this.closed!;
  }
}
