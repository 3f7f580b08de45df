import { it } from 'node:test';
import assert from 'node:assert/strict';
import { refOfUnparsedFrame } from './ops.js';

const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

it("reads a refused frame's top-level ref from its text, wherever it stands, and never one inside the data", () => {
  assert.equal(refOfUnparsedFrame(`{"op":"publish","ref":"first","data":${deep(2000)}}`), 'first');
  assert.equal(refOfUnparsedFrame(`{"op":"publish","data":${deep(2000)},"ref":"last"}`), 'last', 'after the data, as the SDK sends it');
  assert.equal(refOfUnparsedFrame(`{"data":{"ref":"inner","x":${deep(2000)}},"ref":"outer"}`), 'outer', 'a ref in the data is not the frame’s');
  assert.equal(refOfUnparsedFrame(`{"data":"\\"ref\\":\\"fake\\"","x":${deep(2000)} , "ref" : "spaced"}`), 'spaced', 'a quote escaped in a string');
  assert.equal(refOfUnparsedFrame(`{"data":${deep(2000)},"ref":"\\u0041b"}`), 'Ab', 'escapes in the ref itself');
  assert.equal(refOfUnparsedFrame(`[{"ref":"in an array"},${deep(2000)}]`), undefined, 'no object at the top');
  assert.equal(refOfUnparsedFrame(`{"data":${deep(2000)},"ref":7}`), undefined, 'not a string');
  assert.equal(refOfUnparsedFrame(`{"data":${deep(2000)},"ref":"${'r'.repeat(129)}"}`), undefined, 'longer than a ref may be');
  assert.equal(refOfUnparsedFrame(`{"data":${deep(2000)},"ref":"open`), undefined, 'a string never closed');
  assert.equal(refOfUnparsedFrame(`{"data":${deep(2000)},"ref":"bad \\x escape"}`), undefined, 'an escape JSON does not know: no ref, nothing thrown');
});
