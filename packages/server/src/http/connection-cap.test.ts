import { it } from 'node:test';
import assert from 'node:assert/strict';
import { connectionCap, FILES_RESERVED, openFilesLimit } from './connection-cap.js';

const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                20000                files\n`;

it('reads the soft open-files limit from /proc/self/limits, and nothing from what it cannot read', () => {
  assert.equal(openFilesLimit(() => limits('20000')), 20_000);
  assert.equal(openFilesLimit(() => limits('unlimited')), undefined);
  assert.equal(openFilesLimit(() => 'Max cpu time unlimited\n'), undefined);
  assert.equal(
    openFilesLimit(() => {
      throw new Error('ENOENT');
    }),
    undefined,
  );
});

it('keeps files back from clients when automatic, and takes a setting as it is', () => {
  assert.equal(connectionCap(0, 20_000), 20_000 - FILES_RESERVED);
  assert.equal(connectionCap(0, 100), 1, 'never zero: one connection still gets in');
  assert.equal(connectionCap(0, undefined), undefined);
  assert.equal(connectionCap(50, 20_000), 50);
  assert.equal(connectionCap(50, undefined), 50);
});
