import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as ws from 'ws';
import type { HeraldEvent } from '@herald/protocol';
import { httpChunk, sharedChunk, sseEvent, wsEventFrame, wsSharedFrame, wsTextFrame } from './frames.js';

/** ws's frame parser: exported by the package, absent from its type definitions. */
interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  write(bytes: Buffer): void;
}
const { Receiver } = ws as unknown as { Receiver: new (options: { isServer: boolean }) => FrameReceiver };

/** Decodes server frames the way a client does, with ws's own parser. */
function decode(bytes: Buffer): string[] {
  const messages: string[] = [];
  const receiver = new Receiver({ isServer: false });
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, false, 'a text frame');
    messages.push(data.toString());
  });
  receiver.write(bytes);
  return messages;
}

it('frames text as one unmasked final text frame at every length encoding', () => {
  for (const length of [0, 1, 125, 126, 65_535, 65_536, 70_000]) {
    const text = 'é'.repeat(Math.floor(length / 2)) + 'x'.repeat(length % 2);
    const frame = wsTextFrame(text);
    assert.equal(frame[0], 0x81, 'FIN and the text opcode');
    assert.equal(frame[1]! & 0x80, 0, 'not masked');
    assert.deepEqual(decode(frame), [text], `length ${length}`);
  }
});

it('frames a shared payload once, and an event once, whoever asks', () => {
  const payload = Buffer.from('{"op":"presence"}');
  assert.equal(wsSharedFrame(payload), wsSharedFrame(payload));
  assert.deepEqual(decode(wsSharedFrame(payload)), ['{"op":"presence"}']);
  const event = { id: 'evt_1', channel: 'c', seq: 7, type: 'message', data: { a: 1 }, time: 't' } as HeraldEvent;
  assert.equal(wsEventFrame(event), wsEventFrame(event));
  assert.equal(decode(wsEventFrame(event))[0], JSON.stringify({ op: 'event', ...event }), 'op first, then the event as it stringifies');
  assert.equal(sseEvent(event, 'single', false).toString(), `id: 7\ndata: ${JSON.stringify(event)}\n\n`);
  assert.equal(sseEvent(event, 'data', false).toString(), `data: ${JSON.stringify(event)}\n\n`);
  const chunk = sseEvent(event, 'single', true);
  assert.equal(chunk.toString(), httpChunk(`id: 7\ndata: ${JSON.stringify(event)}\n\n`).toString());
  assert.equal(sseEvent(event, 'data', true).toString(), httpChunk(`data: ${JSON.stringify(event)}\n\n`).toString());
  assert.equal(sseEvent(event, 'single', true), chunk, 'each kind is made once');
  const variants = (['single', 'data'] as const).flatMap((kind) => [false, true].map((chunked) => sseEvent(event, kind, chunked).toString()));
  assert.equal(new Set(variants).size, 4, 'and kept apart from the others');
  assert.notEqual(sseEvent({ ...event }, 'single', true), chunk, 'a copy of the event does not take its frames');
  assert.equal(JSON.stringify(event), JSON.stringify({ ...event }), 'nor does its JSON show them');
});

it('chunks SSE bytes for an HTTP/1.1 chunked body, once per shared buffer', () => {
  assert.equal(httpChunk('data: é\n\n').toString(), 'a\r\ndata: é\n\n\r\n', 'the size counts bytes, in hex');
  const shared = Buffer.from(': ping\n\n');
  assert.equal(sharedChunk(shared), sharedChunk(shared));
  assert.equal(sharedChunk(shared).toString(), '8\r\n: ping\n\n\r\n');
});
