import { sign } from '@herald/webhooks';
import type { HeraldEvent } from '@herald/protocol';
import { webhookIdOf } from '../../delivery/webhook-id.js';

/**
 * Sends one event to a local app as a Standard Webhooks request, the way an
 * endpoint would receive it, and returns a one-line report.
 */
export async function forward(target: string, secret: string, event: HeraldEvent): Promise<{ ok: boolean; line: string }> {
  const body = JSON.stringify(event);
  const started = performance.now();
  try {
    const res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'herald-cli', ...sign('standard', { secret, id: webhookIdOf('standard', event.id), body }) },
      body,
      redirect: 'manual',
    });
    await res.arrayBuffer();
    const ms = Math.round(performance.now() - started);
    return { ok: res.ok, line: `--> ${res.status} ${event.channel} #${event.seq} ${event.type} ${event.id} (${ms} ms)` };
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    return { ok: false, line: `--> failed ${event.channel} #${event.seq} ${event.id}: ${cause}` };
  }
}
