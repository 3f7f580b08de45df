import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from './errors.js';
import { decodeCursor, decodeStreamId, encodeCursor, encodeStreamId, isStreamId, MAX_CURSOR_LENGTH, streamIdPrefix } from './cursor.js';

it('round-trips positions and refuses cursors it did not make', () => {
  const positions = new Map([['a', 3], ['user:1', 0]]);
  assert.deepEqual(decodeCursor(encodeCursor(positions)), positions);
  assert.equal(decodeCursor(undefined).size, 0);
  for (const bad of ['!!!', Buffer.from('{"v":2,"p":{}}').toString('base64url'), Buffer.from('{"v":1,"p":{"a":-1}}').toString('base64url'), Buffer.from('{"v":1,"p":{"bad name":1}}').toString('base64url')]) {
    assert.throws(() => decodeCursor(bad), (e: unknown) => e instanceof HeraldError && e.code === 'invalid_cursor');
  }
});

it('drops from a cursor the names . and .., channels once and no more, and resumes the others', () => {
  const old = Buffer.from('{"v":1,"p":{"a":3,".":5,"..":7}}').toString('base64url');
  assert.deepEqual(decodeCursor(old), new Map([['a', 3]]));
});

const invalidCursor = (e: unknown) => e instanceof HeraldError && e.code === 'invalid_cursor';

it('encodes a cursor as unpadded base64url JSON with a version', () => {
  const cursor = encodeCursor(new Map([['a', 1]]));
  assert.equal(Buffer.from(cursor, 'base64url').toString(), '{"v":1,"p":{"a":1}}');
  assert.equal(cursor, 'eyJ2IjoxLCJwIjp7ImEiOjF9fQ', 'no = padding');
  const names = ['a', 'ab', 'abc', 'a.b:c-d_e'];
  for (const name of names) {
    const text = encodeCursor(new Map([[name, 9_007_199_254_740_991]]));
    assert.match(text, /^[A-Za-z0-9_-]+$/, 'no padding, no + or /');
    assert.equal(text, Buffer.from(JSON.stringify({ v: 1, p: { [name]: 9_007_199_254_740_991 } })).toString('base64url'));
  }
  // Non-ASCII is UTF-8 encoded before base64 (the decoder refuses such a channel, but the bytes round-trip).
  assert.equal(Buffer.from(encodeCursor(new Map([['é', 1]])), 'base64url').toString('utf8'), '{"v":1,"p":{"é":1}}');
  // `>>>?` encodes to base64 with `+`, `/` and `==`: base64url has `-`, `_` and no padding.
  assert.equal(encodeCursor(new Map([['>>>?', 1]])), 'eyJ2IjoxLCJwIjp7Ij4-Pj8iOjF9fQ');
});

it('decodes base64url spellings that use - and _ and refuses + / = and other characters', () => {
  // The pad string makes the base64 hold `+` and `/` (as `-` and `_` in base64url), and a decoder ignores extra fields.
  const good = Buffer.from('{"v":1,"p":{"a":1},"pad":"?>?>?>"}').toString('base64url');
  assert.equal(good, 'eyJ2IjoxLCJwIjp7ImEiOjF9LCJwYWQiOiI_Pj8-Pz4ifQ');
  assert.deepEqual(decodeCursor(good), new Map([['a', 1]]));
  for (const bad of [good.replace(/-/g, '+').replace(/_/g, '/'), `${good}=`, `${good}.`, `${good} `]) assert.throws(() => decodeCursor(bad), invalidCursor, bad);
  assert.equal(decodeCursor('').size, 0, 'the empty cursor is the start of everything');
});

it('refuses cursors that are not a version-1 object of positions, and bytes that are not UTF-8', () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64url');
  for (const json of ['null', '1', '"x"', '[]', '{"p":{}}', '{"v":"1","p":{}}', '{"v":1}', '{"v":1,"p":null}', '{"v":1,"p":[]}', '{"v":1,"p":3}', '{"v":1,"p":{"a":1.5}}', '{"v":1,"p":{"a":"1"}}']) {
    assert.throws(() => decodeCursor(b64(json)), invalidCursor, json);
  }
  assert.throws(() => decodeCursor(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64url')), invalidCursor, 'not UTF-8');
  assert.deepEqual(decodeCursor(b64('{"v":1,"p":{"a":0}}')), new Map([['a', 0]]), 'zero is a position');
  assert.deepEqual(decodeCursor(b64('{"v":1,"p":{}}')), new Map());
});

it('bounds the cursor length at exactly MAX_CURSOR_LENGTH', () => {
  const padded = (length: number) => {
    const head = '{"v":1,"p":{"a":1},"x":"';
    const json = head + 'y'.repeat(Math.ceil((length * 3) / 4) - head.length - 2) + '"}';
    return Buffer.from(json).toString('base64url');
  };
  let atLimit = padded(MAX_CURSOR_LENGTH);
  while (atLimit.length > MAX_CURSOR_LENGTH) atLimit = padded(MAX_CURSOR_LENGTH - (atLimit.length - MAX_CURSOR_LENGTH));
  assert.ok(atLimit.length <= MAX_CURSOR_LENGTH && atLimit.length > MAX_CURSOR_LENGTH - 8);
  assert.equal(decodeCursor(atLimit).get('a'), 1);
  assert.throws(() => decodeCursor('A'.repeat(MAX_CURSOR_LENGTH + 1)), (e: unknown) => invalidCursor(e) && /at most 32768 characters/.test((e as Error).message));
  assert.throws(() => decodeStreamId(`2.x.${'1.'.repeat(MAX_CURSOR_LENGTH / 2)}1`, ['a']), (e: unknown) => invalidCursor(e) && /at most 32768/.test((e as Error).message));
});

it('stream ids carry one seq per channel and a fingerprint of the list, and decode only for that list', () => {
  const channels = ['orders', 'user:1', 'news.eu'];
  const id = encodeStreamId(channels, [3, 0, 1_000_000]);
  assert.match(id, /^2\.[0-9a-z]+\.3\.0\.1000000$/);
  assert.ok(isStreamId(id));
  assert.deepEqual(decodeStreamId(id, channels), [3, 0, 1_000_000]);
  // The fingerprint is a fixed function of the list (FNV-1a with a separator after each name).
  assert.equal(encodeStreamId(['a'], [1]), '2.ab0mvm.1');
  assert.equal(encodeStreamId(['a', 'b'], [1, 2]), '2.xw31f2.1.2');
  assert.equal(encodeStreamId([], []), '2.ztntfp.');
  // What a stream writes per event: the prefix made once, then the positions.
  assert.equal(`${streamIdPrefix(channels)}3.0.1000000`, id);
  const otherList = (e: unknown) => invalidCursor(e) && /another channel list/.test((e as Error).message);
  assert.throws(() => decodeStreamId(id, ['orders', 'news.eu', 'user:1']), otherList, 'another order');
  assert.throws(() => decodeStreamId(id, ['orders', 'user:1']), otherList, 'fewer channels');
  assert.throws(() => decodeStreamId(encodeStreamId(['ab', 'c'], [1, 2]), ['a', 'bc']), otherList, 'the same letters split differently');
  const fp = id.split('.')[1]!;
  assert.throws(() => decodeStreamId(`2.${fp}.3.0`, channels), otherList, 'a seq missing for a channel of the same list');
  assert.throws(() => decodeStreamId(`2.${fp}.3.0.1.4`, channels), otherList, 'a seq too many');
});

it('refuses stream ids that are malformed', () => {
  const channels = ['a'];
  const fp = encodeStreamId(channels, [1]).split('.')[1]!;
  assert.deepEqual(decodeStreamId(`2.${fp}.${'9'.repeat(15)}`, channels), [999_999_999_999_999]);
  for (const bad of [`2.${fp}`, `3.${fp}.1`, `.${fp}.1`, `2.${fp}.`, `2.${fp}.-1`, `2.${fp}.1a`, `2.${fp}.a1`, `2.${fp}.1.5x`, `2.${fp}.${'9'.repeat(16)}`, `2.${fp}.1e3`, `2.${fp}. 1`, '2']) {
    assert.throws(() => decodeStreamId(bad, channels), invalidCursor, bad);
  }
  assert.ok(!isStreamId('eyJ2IjoxfQ'), 'a v1 cursor is not a stream id');
  assert.ok(!isStreamId('2'), 'the version alone is not a stream id');
  assert.ok(!isStreamId('3.x.1'));
});

const DEFAULT_MESSAGE = 'The cursor is not one this server issued.';

it('turns both + and / into base64url', () => {
  // `???>>>` is bytes whose base64 holds both `/` and `+`.
  assert.equal(Buffer.from('{"v":1,"p":{"???>>>":1}}').toString('base64'), 'eyJ2IjoxLCJwIjp7Ij8/Pz4+PiI6MX19');
  assert.equal(encodeCursor(new Map([['???>>>', 1]])), 'eyJ2IjoxLCJwIjp7Ij8_Pz4-PiI6MX19');
});

it('refuses a cursor whose bytes are not UTF-8 even where the JSON would still parse', () => {
  const bytes = Buffer.concat([Buffer.from('{"v":1,"p":{"a":1},"x":"'), Buffer.from([0xff]), Buffer.from('"}')]);
  assert.throws(() => decodeCursor(bytes.toString('base64url')), invalidCursor);
});

it('decodes a stream id of exactly MAX_CURSOR_LENGTH characters, and refuses malformed ones with the plain message', () => {
  // Enough channels, and seqs long enough, to make the id exactly the limit.
  const channels = Array.from({ length: 2500 }, (_, i) => `c${i}`);
  const fingerprint = encodeStreamId(channels, channels.map(() => 0)).split('.')[1]!;
  let room = MAX_CURSOR_LENGTH - `2.${fingerprint}.`.length - (channels.length * 2 - 1);
  const seqs = channels.map(() => {
    const extra = Math.min(14, room);
    room -= extra;
    return Number(`1${'0'.repeat(extra)}`);
  });
  assert.equal(room, 0);
  const id = encodeStreamId(channels, seqs);
  assert.equal(id.length, MAX_CURSOR_LENGTH);
  assert.deepEqual(decodeStreamId(id, channels), seqs);
  const emptyList = encodeStreamId([], []);
  assert.throws(() => decodeStreamId(emptyList, []), (e: unknown) => invalidCursor(e) && (e as Error).message === DEFAULT_MESSAGE, 'no seqs at all');
  const two = ['a', 'b'];
  const fp = encodeStreamId(two, [0, 0]).split('.')[1]!;
  for (const bad of [`2.${fp}.1.x`, `2.${fp}.x.1`, `2.${fp}`, `1.${fp}.1.1`]) {
    assert.throws(() => decodeStreamId(bad, two), (e: unknown) => invalidCursor(e) && (e as Error).message === DEFAULT_MESSAGE, bad);
  }
});
