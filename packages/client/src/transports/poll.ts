import type { MultiChannelPage } from '@herald/protocol';
import { authHeaders, channelQuery, HttpTransport, statusError } from './http.js';
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
        if (!res.ok) throw await statusError(res, 'polling');
        page = (await res.json()) as MultiChannelPage;
      } finally {
        clearTimeout(timeout);
      }
      // Restarted meanwhile (a channel added or removed, perhaps by an event handler below): this page was read from
      // the old positions, and the new request reads from the current ones. Handed over, its events would move a
      // channel subscribed again from an earlier position past the events the new request replays.
      if (controller.signal.aborted) return;
      this.markOpen();
      // The server may have changed between two polls (a restart onto other data) with no error to say so: a channel
      // whose epoch changed starts over from its new history, and this page's events of it (read from the stale
      // position) are dropped.
      const restarted = new Set(Object.entries(page.epochs ?? {}).flatMap(([channel, epoch]) => (this.handlers.epoch(channel, epoch) ? [channel] : [])));
      for (const gap of page.gaps) if (!restarted.has(gap.channel) && !controller.signal.aborted) this.handlers.gap(gap);
      for (const event of page.events) if (!restarted.has(event.channel) && !controller.signal.aborted) this.handlers.event(event);
    }
  }
}

export const pollTransport: TransportFactory = (ctx, handlers) => new PollTransport(ctx, handlers);
