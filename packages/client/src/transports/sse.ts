import type { GapInfo, HeraldEvent } from '@herald/protocol';
import { SseParser } from '../sse-parser.js';
import { authHeaders, channelQuery, HttpStatusError, HttpTransport } from './http.js';
import type { Transport, TransportFactory } from './types.js';

/** Server-Sent Events over fetch: one multi-channel stream, resumed from the positions the client holds. */
class SseTransport extends HttpTransport implements Transport {
  readonly name = 'sse' as const;
  private watchdog: ReturnType<typeof setInterval> | undefined;

  protected async run(controller: AbortController): Promise<void> {
    if (this.ctx.positions.size === 0) return;
    const res = await this.ctx.fetch(`${this.ctx.url}/v1/stream?${channelQuery(this.ctx)}`, {
      headers: { ...authHeaders(this.ctx), accept: 'text/event-stream' },
      signal: controller.signal,
    });
    if (!res.ok || !res.body) throw new HttpStatusError(res.status, `HTTP ${res.status} opening the stream`);
    this.markOpen();
    let lastSeen = Date.now();
    clearInterval(this.watchdog);
    // The server's `: ping` comments count as signs of life: fetch sees them where EventSource would not.
    this.watchdog = setInterval(() => {
      if (Date.now() - lastSeen > this.ctx.heartbeatTimeoutMs) controller.abort(new Error('heartbeat timeout'));
    }, this.ctx.heartbeatTimeoutMs / 3);
    const parser = new SseParser((message) => {
      if (message.event === 'message') this.handlers.event(JSON.parse(message.data) as HeraldEvent);
      else if (message.event === 'gap') this.handlers.gap(JSON.parse(message.data) as GapInfo);
      else if (message.event === 'close') controller.abort(new Error('the server closed the stream'));
    });
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      lastSeen = Date.now();
      parser.push(decoder.decode(value, { stream: true }));
    }
  }

  protected override cleanup(): void {
    clearInterval(this.watchdog);
    super.cleanup();
  }
}

export const sseTransport: TransportFactory = (ctx, handlers) => new SseTransport(ctx, handlers);
