import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { UrlGuard } from './ssrf.js';

it('refuses loopback, private, link-local, metadata, multicast and mapped addresses', () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false });
  for (const address of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', 'fe80::1', 'fd00:ec2::254', 'ff02::1', '::ffff:127.0.0.1', '64:ff9b::a9fe:a9fe'.replace('a9fe:a9fe', '169.254.169.254')]) {
    assert.ok(guard.refusal(address), `${address} should be refused`);
  }
  for (const address of ['93.184.216.34', '1.1.1.1', '2606:4700:4700::1111']) assert.equal(guard.refusal(address), undefined, address);
});

it('lets configured CIDRs through', () => {
  const guard = new UrlGuard({ allowPrivateNetworks: ['127.0.0.0/8', '10.0.0.0/24'], httpsOnly: false });
  assert.equal(guard.refusal('127.0.0.1'), undefined);
  assert.equal(guard.refusal('10.0.0.9'), undefined);
  assert.ok(guard.refusal('10.0.1.9'));
});

it('checks URLs at registration', async () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: true });
  const refused = (e: unknown) => e instanceof HeraldError && (e.code === 'unprocessable' || e.code === 'bad_request');
  await assert.rejects(guard.checkUrl('http://93.184.216.34/hook'), refused);
  await assert.rejects(guard.checkUrl('https://127.0.0.1/hook'), refused);
  await assert.rejects(guard.checkUrl('https://[::1]/hook'), refused);
  await assert.rejects(guard.checkUrl('https://localhost/hook'), refused);
  await assert.rejects(guard.checkUrl('ftp://93.184.216.34/'), refused);
  await assert.rejects(guard.checkUrl('https://user:pw@93.184.216.34/'), refused);
  await assert.rejects(guard.checkUrl('not a url'), refused);
  assert.equal((await guard.checkUrl('https://93.184.216.34/hook')).hostname, '93.184.216.34');
});
