import { it } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, type SseMessage } from './sse-parser.js';

it('parses events split anywhere, with any line ending, and skips comments', () => {
  const got: SseMessage[] = [];
  const parser = new SseParser((m) => got.push(m));
  const stream = 'retry: 10\n\n: ping\n\nid: 1\ndata: {"a":\ndata: 1}\n\nevent: gap\r\ndata: x\r\n\r\nid: 2\rdata:no-space\r\r';
  for (let i = 0; i < stream.length; i += 3) parser.push(stream.slice(i, i + 3));
  assert.deepEqual(got, [
    { event: 'message', data: '{"a":\n1}', id: '1' },
    { event: 'gap', data: 'x', id: '1' },
    { event: 'message', data: 'no-space', id: '2' },
  ]);
});
