import type { MultiChannelPage } from '@herald/protocol';
import { authHeaders, HttpTransport, statusError, type HttpStatusError } from './http.js';
import type { Transport, TransportFactory } from './types.js';

/** Seconds the server may hold each poll. */
const WAIT_SECONDS = 25;

/** The pause after a poll the server would not park, when its Retry-After says nothing usable, and its bounds. */
const BUSY_PAUSE_MS = { fallback: 5000, min: 1000, max: 60_000 };

/**
 * How long to wait before polling again after a poll the server refused to park (`503`, reason `too_many_waiting`:
 * its bound on waiting polls is reached): its Retry-After (seconds or a date), kept within 1 to 60 s, so a
 * missing or odd header neither spins nor stalls the client. Undefined for any other answer.
 */
function busyPause(res: Response, error: HttpStatusError): number | undefined {
  if (error.status !== 503 || error.reason !== 'too_many_waiting') return undefined;
  const header = res.headers.get('retry-after') ?? '';
  const seconds = /^\d+$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  const ms = Number.isFinite(seconds) ? seconds : BUSY_PAUSE_MS.fallback;
  return Math.min(BUSY_PAUSE_MS.max, Math.max(BUSY_PAUSE_MS.min, ms));
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** Long polling: works through any proxy that passes plain requests. */
class PollTransport extends HttpTransport implements Transport {
  readonly name = 'poll' as const;

  protected async run(controller: AbortController): Promise<void> {
    while (!this.ended && this.channels().length > 0) {
      const params = this.query();
      // The first poll answers at once, so the connection is known to work before the long waits begin.
      const wait = this.isOpen ? WAIT_SECONDS : 0;
      params.set('wait', String(wait));
      params.set('limit', '1000');
      // A poll sent on a pooled connection that died silently gets no answer: it is given up one heartbeat timeout
      // after the server should have answered (the first poll's at once, not 25 s later).
      const timeout = setTimeout(() => controller.abort(new Error('poll timed out')), wait * 1000 + this.ctx.heartbeatTimeoutMs);
      let page: MultiChannelPage | undefined;
      let busy: number | undefined;
      try {
        const res = await this.ctx.fetch(`${this.ctx.url}/v1/events?${params}`, { headers: authHeaders(this.ctx), signal: controller.signal });
        if (!res.ok) {
          const error = await statusError(res, 'polling');
          busy = busyPause(res, error);
          if (busy === undefined) throw error;
        } else {
          page = (await res.json()) as MultiChannelPage;
        }
      } finally {
        clearTimeout(timeout);
      }
      if (page === undefined) {
        // The server is up and this connection works, it just holds as many waiting polls as it may: poll again from
        // the same positions once it says, without ending the connection (which would read every channel's state
        // again and report a disconnection). Nothing is missed: the next poll reads from where this one would have.
        await pause(busy ?? BUSY_PAUSE_MS.fallback, controller.signal);
        if (controller.signal.aborted) return;
        continue;
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
