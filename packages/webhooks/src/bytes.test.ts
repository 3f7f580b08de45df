// The byte-level helpers every scheme relies on: header reading, signature decoding, secrets and timestamps.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { checkTimestamp, decodeSignature, header, hmacSha256, MAX_HEADER_LENGTH, requireHeader, sameBytes, secretsOf, toBuffer } from './bytes.js';
import { VerificationErrorCodes, WebhookVerificationError } from './errors.js';

const failsWith = (code: string, message?: string) => (e: unknown) =>
  e instanceof WebhookVerificationError && e.code === code && e.name === 'WebhookVerificationError' && (message === undefined || e.message === message);

it('takes strings as UTF-8 and a Uint8Array view as exactly its own bytes', () => {
  assert.deepEqual([...toBuffer('é')], [0xc3, 0xa9]);
  const whole = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  const view = whole.subarray(2, 4);
  assert.deepEqual([...toBuffer(view)], [3, 4], 'the view, not the buffer behind it');
  assert.deepEqual([...toBuffer(whole)], [1, 2, 3, 4, 5, 6]);
});

it('reads a header from fetch Headers or a plain object, in any casing, arrays joined', () => {
  assert.equal(header(new Headers({ 'X-Thing': 'a' }), 'x-thing'), 'a');
  assert.equal(header(new Headers(), 'x-thing'), undefined);
  assert.equal(header({ 'x-thing': 'exact' }, 'x-thing'), 'exact');
  assert.equal(header({ 'X-Thing': 'cased' }, 'x-thing'), 'cased');
  assert.equal(header({ 'X-THING': 'upper', other: 'o' }, 'x-thing'), 'upper');
  assert.equal(header({ 'x-thing': ['a', 'b'] }, 'x-thing'), 'a,b');
  assert.equal(header({ 'x-thing': '' }, 'x-thing'), undefined, 'empty is absent');
  assert.equal(header({ 'x-thing': undefined }, 'x-thing'), undefined);
  assert.equal(header({ other: 'o' }, 'x-thing'), undefined);
  assert.equal(header({ 'X-Thing': 'cased', 'x-thing': 'exact' }, 'x-thing'), 'exact', 'the exact name first');
  assert.equal(header({ undefined: 'no' }, 'x-thing'), undefined, 'no key is no value');
  assert.equal(header({ 'x-thing': 'x'.repeat(MAX_HEADER_LENGTH) }, 'x-thing')?.length, MAX_HEADER_LENGTH, 'exactly the limit is fine');
  assert.throws(() => header({ 'x-thing': 'x'.repeat(MAX_HEADER_LENGTH + 1) }, 'x-thing'), failsWith('malformed_header', 'x-thing is over 65536 bytes.'));
  assert.equal(requireHeader({ 'x-thing': 'v' }, 'x-thing'), 'v');
  assert.throws(() => requireHeader({}, 'x-thing'), failsWith('missing_header', 'The x-thing header is missing.'));
});

it('computes HMAC-SHA256 over parts in order, with a string or byte key', () => {
  const expected = createHmac('sha256', 'key').update('ab').update('cd').digest();
  assert.deepEqual(hmacSha256('key', 'ab', Buffer.from('cd')), expected);
  assert.deepEqual(hmacSha256(Buffer.from('key'), 'abcd'), expected);
  assert.deepEqual(hmacSha256(Uint8Array.from(Buffer.from('xkeyx')).subarray(1, 4), 'a', 'bcd'), expected, 'a key view is its own bytes');
});

it('decodes hex and canonical base64 signatures, and nothing else', () => {
  assert.deepEqual(decodeSignature('00ff', 'hex'), Buffer.from([0, 255]));
  assert.deepEqual(decodeSignature('00FF', 'hex'), Buffer.from([0, 255]));
  for (const bad of ['0', '0g', 'zz', '', ' 00', '00 ', 'zz00', '00zz', '0z0z']) assert.equal(decodeSignature(bad, 'hex'), undefined, JSON.stringify(bad));
  assert.deepEqual(decodeSignature('AAE=', 'base64'), Buffer.from([0, 1]));
  assert.deepEqual(decodeSignature('+/+/', 'base64'), Buffer.from('+/+/', 'base64'));
  for (const bad of ['AAE', 'AAF=', 'AA==AA==', 'AA=A', '-_-_', '', 'AAE= ', 'A===']) assert.equal(decodeSignature(bad, 'base64'), undefined, JSON.stringify(bad));
});

it('compares bytes only when both are there and the same length', () => {
  assert.equal(sameBytes(Buffer.from([1, 2]), Buffer.from([1, 2])), true);
  assert.equal(sameBytes(Buffer.from([1, 2]), Buffer.from([1, 3])), false);
  assert.equal(sameBytes(Buffer.from([1, 2]), Buffer.from([1])), false, 'a truncated signature is no match');
  assert.equal(sameBytes(Buffer.from([1, 2]), Buffer.from([1, 2, 3])), false);
  assert.equal(sameBytes(Buffer.from([1, 2]), undefined), false);
});

it('collects secrets from `secret` and `secrets`, refusing none or empty ones', () => {
  assert.deepEqual(secretsOf({ secret: 'a' }), ['a']);
  assert.deepEqual(secretsOf({ secrets: 'bc' }), ['bc'], 'one string is one secret');
  assert.deepEqual(secretsOf({ secrets: ['b', 'c'] }), ['b', 'c']);
  assert.deepEqual(secretsOf({ secret: 'a', secrets: ['b'] }), ['a', 'b'], 'the single secret first');
  assert.throws(() => secretsOf({}), failsWith('invalid_secret', 'Give at least one secret.'));
  assert.throws(() => secretsOf({ secrets: [] }), failsWith('invalid_secret', 'Give at least one secret.'));
  assert.throws(() => secretsOf({ secret: '' }), failsWith('invalid_secret', 'Secrets are non-empty strings.'));
  assert.throws(() => secretsOf({ secrets: ['ok', ''] }), failsWith('invalid_secret', 'Secrets are non-empty strings.'));
  assert.throws(() => secretsOf({ secrets: ['ok', 7 as unknown as string] }), failsWith('invalid_secret', 'Secrets are non-empty strings.'));
});

it('reads timestamps as 1 to 12 digits of unix seconds, within the tolerance either way', () => {
  assert.equal(checkTimestamp('1000', 1000, 0), 1000);
  assert.equal(checkTimestamp('1300', 1000, 300), 1300, 'exactly the tolerance ahead');
  assert.equal(checkTimestamp('700', 1000, 300), 700, 'exactly the tolerance behind');
  assert.throws(() => checkTimestamp('1301', 1000, 300), failsWith('timestamp_outside_tolerance', 'Timestamp 1301 is more than 300 s from now (1000).'));
  assert.throws(() => checkTimestamp('699', 1000, 300), failsWith('timestamp_outside_tolerance'));
  assert.equal(checkTimestamp('999999999999', 999999999999, 0), 999999999999);
  for (const bad of ['', '-1', '1.5', ' 1', '1 ', '1e3', '0x10', '1234567890123', 'abc']) {
    assert.throws(() => checkTimestamp(bad, 1000, 1e12), failsWith('malformed_header'), JSON.stringify(bad));
  }
  assert.throws(() => checkTimestamp('x'.repeat(100), 0, 0), failsWith('malformed_header', `Timestamp "${'x'.repeat(32)}" is not unix seconds.`), 'quotes at most 32 characters');
});

it('names every error code it can throw', () => {
  assert.deepEqual([...VerificationErrorCodes], ['missing_header', 'malformed_header', 'timestamp_outside_tolerance', 'no_matching_signature', 'invalid_secret']);
  const error = new WebhookVerificationError('missing_header', 'm');
  assert.equal(error.name, 'WebhookVerificationError');
  assert.equal(String(error), 'WebhookVerificationError: m');
});
