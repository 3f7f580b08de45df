import type { DirectMessage, EphemeralMessage, PresenceAction, PresenceMember } from '@herald/protocol';

/**
 * One ephemeral message and its frames, each serialized at most once however
 * many local subscribers get it: every listener is handed the same object.
 */
export class EphemeralFrames {
  private ws: Buffer | undefined;
  private sse: Buffer | undefined;

  constructor(readonly message: EphemeralMessage) {}

  /** The WebSocket `ephemeral` op: like `event`, without `seq` and `id`. */
  get websocket(): Buffer {
    return (this.ws ??= Buffer.from(JSON.stringify({ op: 'ephemeral', ...this.message })));
  }

  /**
   * A named SSE event with no `id:` field: per the HTML standard an event
   * without one leaves the stream's last event ID as it was, so the browser's
   * `Last-Event-ID` on reconnect (the stream's cursor) still names the last
   * logged event. Named, so `EventSource.onmessage` (log events) never sees it.
   */
  get eventStream(): Buffer {
    return (this.sse ??= Buffer.from(`event: ephemeral\ndata: ${JSON.stringify(this.message)}\n\n`));
  }
}

export function wsPresenceFrame(channel: string, action: PresenceAction, member: PresenceMember): Buffer {
  return Buffer.from(JSON.stringify({ op: 'presence', channel, action, member }));
}

export function wsMessageFrame(message: DirectMessage): Buffer {
  return Buffer.from(JSON.stringify({ op: 'message', ...message }));
}
