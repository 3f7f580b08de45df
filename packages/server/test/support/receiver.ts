import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Hook {
  /** When it arrived, ms since the epoch. */
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The parsed body: Herald posts the event JSON. */
  event: { id: string; channel: string; seq: number; type: string; data: unknown };
}

/** Answers one request: the hook, how many came before it, and the response to write. */
export type Respond = (hook: Hook, index: number, res: ServerResponse) => void;

/** A local webhook receiver: `respond` answers each POST, or else `status` (changeable at any time) does. */
export class HookReceiver {
  readonly hooks: Hook[] = [];
  status = 200;
  url = '';
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const hook: Hook = { at: Date.now(), headers: req.headers, body, event: JSON.parse(body) as Hook['event'] };
      this.hooks.push(hook);
      if (this.respond) return this.respond(hook, this.hooks.length - 1, res);
      res.writeHead(this.status, { 'content-type': 'text/plain' }).end(this.status < 300 ? 'ok' : `refused with ${this.status}`);
    });
  });

  constructor(private readonly respond?: Respond) {}

  /** The ids of the events received (each once, however often it came). */
  eventIds(): Set<string> {
    return new Set(this.hooks.map((hook) => hook.event.id));
  }

  /** On `port`, or any free one. */
  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
