import type { EphemeralMessage, GapInfo, HeraldEvent } from '@herald/protocol';
import { monotonicNow } from '../backoff.js';
import { SseParser } from '../sse-parser.js';
import { answeredInTime, authHeaders, CredentialEndedError, GoingAwayError, HttpStatusError, HttpTransport, statusError } from './http.js';
import type { Transport, TransportFactory } from './types.js';

/**
 * What a `close` event's reason means for the next attempt: `shutdown` is a restart (reconnect at once, elsewhere);
 * `credential expired` and `credential revoked` need a fresh credential, so a fixed one ends the client here rather
 * than after one more request the server would refuse.
 */
function closedError(message: string, reason: string | undefined): Error {
  if (reason === 'shutdown') return new GoingAwayError(message);
  if (reason?.startsWith('credential ')) return new CredentialEndedError(message);
  return new Error(message);
}

/** Server-Sent Events over fetch: one multi-channel stream, resumed from the positions the client holds. */
class SseTransport extends HttpTransport implements Transport {
  readonly name = 'sse' as const;
  private watchdog: ReturnType<typeof setInterval> | undefined;

  protected async run(controller: AbortController): Promise<void> {
    if (this.channels().length === 0) return;
    // A refusal's body is read within the same deadline: one that never ends must not hold the attempt.
    const res = await answeredInTime(this.ctx, controller, async () => {
      const res = await this.ctx.fetch(`${this.ctx.url}/v1/stream?${this.query()}`, {
        headers: { ...authHeaders(this.ctx), accept: 'text/event-stream' },
        signal: controller.signal,
      });
      if (!res.ok) throw await statusError(res, 'opening the stream');
      return res;
    });
    if (!res.body) throw new HttpStatusError(res.status, `HTTP ${res.status} opening the stream: no body`);
    let lastSeen = monotonicNow();
    clearInterval(this.watchdog);
    // The server's `: ping` comments count as signs of life: fetch sees them where EventSource would not.
    this.watchdog = setInterval(() => {
      if (monotonicNow() - lastSeen > this.ctx.heartbeatTimeoutMs) controller.abort(new Error('heartbeat timeout'));
    }, this.ctx.heartbeatTimeoutMs / 3);
    this.markOpen();
    let closedBy: string | undefined;
    let closeReason: string | undefined;
    const parser = new SseParser((message) => {
      // Nothing more once this stream is aborted: a restart (channels changed, perhaps by an event handler of this
      // very chunk) reads from the positions as they are now, and this stream's later events, sent for the old
      // positions, would move a channel subscribed again from an earlier position past what the new stream replays.
      if (closedBy !== undefined || controller.signal.aborted) return;
      if (message.event === 'message') this.handlers.event(JSON.parse(message.data) as HeraldEvent);
      else if (message.event === 'gap') this.handlers.gap(JSON.parse(message.data) as GapInfo);
      // Named and without an id: it moves no position (the server never gives it one).
      else if (message.event === 'ephemeral') this.handlers.ephemeral(JSON.parse(message.data) as EphemeralMessage);
      else if (message.event === 'close') {
        closeReason = (JSON.parse(message.data) as { reason?: string }).reason;
        closedBy = `the server closed the stream${closeReason ? ` (${closeReason})` : ''}`;
      }
    });
    // Node's fetch can leave a pending read unsettled when the request is aborted (by the watchdog, a
    // channel change or close()), so every read also races the abort signal.
    const signal = controller.signal;
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => {});
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { value, done } = await Promise.race([reader.read(), aborted]);
        // A graceful restart ends the body (after `event: close`): reconnect now, not at the watchdog.
        if (done) throw new Error('the stream ended');
        lastSeen = monotonicNow();
        parser.push(decoder.decode(value, { stream: true }));
        if (closedBy !== undefined) throw closedError(closedBy, closeReason);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  protected override cleanup(): void {
    clearInterval(this.watchdog);
    super.cleanup();
  }
}

export const sseTransport: TransportFactory = (ctx, handlers) => new SseTransport(ctx, handlers);
