import type { MultiChannelPage } from '@herald/protocol';
import { authHeaders, channelQuery, HttpStatusError, HttpTransport } from './http.js';
import type { Transport, TransportFactory } from './types.js';

/** Seconds the server may hold each poll. */
const WAIT_SECONDS = 25;

/** Long polling: works through any proxy that passes plain requests. */
class PollTransport extends HttpTransport implements Transport {
  readonly name = 'poll' as const;

  protected async run(controller: AbortController): Promise<void> {
    while (!this.ended && this.ctx.positions.size > 0) {
      const params = channelQuery(this.ctx);
      // The first poll answers at once, so the connection is known to work before the long waits begin.
      params.set('wait', this.isOpen ? String(WAIT_SECONDS) : '0');
      params.set('limit', '1000');
      const timeout = setTimeout(() => controller.abort(new Error('poll timed out')), WAIT_SECONDS * 1000 + this.ctx.heartbeatTimeoutMs);
      let page: MultiChannelPage;
      try {
        const res = await this.ctx.fetch(`${this.ctx.url}/v1/events?${params}`, { headers: authHeaders(this.ctx), signal: controller.signal });
        if (!res.ok) throw new HttpStatusError(res.status, `HTTP ${res.status} polling`);
        page = (await res.json()) as MultiChannelPage;
      } finally {
        clearTimeout(timeout);
      }
      this.markOpen();
      for (const gap of page.gaps) this.handlers.gap(gap);
      for (const event of page.events) this.handlers.event(event);
    }
  }
}

export const pollTransport: TransportFactory = (ctx, handlers) => new PollTransport(ctx, handlers);
