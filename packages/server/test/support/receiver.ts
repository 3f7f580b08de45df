import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Hook {
  headers: IncomingHttpHeaders;
  body: string;
  /** The parsed body: Herald posts the event JSON. */
  event: { id: string; channel: string; seq: number; type: string; data: unknown };
}

/** A local webhook receiver answering `status` (changeable at any time) to every POST. */
export class HookReceiver {
  readonly hooks: Hook[] = [];
  status = 200;
  url = '';
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.hooks.push({ headers: req.headers, body, event: JSON.parse(body) as Hook['event'] });
      res.writeHead(this.status, { 'content-type': 'text/plain' }).end(this.status < 300 ? 'ok' : `refused with ${this.status}`);
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
