import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { embeddedIPv4, parseIPv6, UrlGuard } from './ssrf.js';

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

/** Issue #10 item 7: each written as the URL parser leaves it (hex), and as typed (dotted) where there is a dotted form. */
const EMBEDDED_INWARD = [
  ['64:ff9b::127.0.0.1', 'NAT64, dotted'],
  ['64:ff9b::7f00:1', 'NAT64, hex'],
  ['64:ff9b::a9fe:a9fe', 'NAT64 to the metadata address'],
  ['64:ff9b:1::a00:1', 'local-use NAT64'],
  ['64:ff9b:1:abcd::5db8:d822', 'local-use NAT64, whatever it carries'],
  ['::ffff:127.0.0.1', 'IPv4-mapped, dotted'],
  ['::ffff:7f00:1', 'IPv4-mapped, hex'],
  ['::FFFF:A9FE:A9FE', 'IPv4-mapped, upper case'],
  ['0:0:0:0:0:ffff:0a00:0001', 'IPv4-mapped, written out'],
  ['::ffff:0:127.0.0.1', 'IPv4-translated, dotted'],
  ['::ffff:0:7f00:1', 'IPv4-translated, hex'],
  ['::127.0.0.1', 'IPv4-compatible, dotted'],
  ['::7f00:1', 'IPv4-compatible, hex'],
  ['::a9fe:a9fe', 'IPv4-compatible metadata'],
  ['2002:7f00:1::', '6to4 of 127.0.0.1'],
  ['2002:a9fe:a9fe:1234::1', '6to4 of 169.254.169.254 with a subnet and host'],
  ['2002:c0a8:0101::', '6to4 of 192.168.1.1'],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'Teredo, client 127.0.0.1'],
  ['2001::5601:5601', 'Teredo, client 169.254.169.254'],
  ['fec0::1', 'site-local'],
  ['feff:ffff::1', 'site-local, top of the range'],
  ['fe80::1%eth0', 'link-local with a zone'],
] as const;

it('refuses IPv4 reached through every IPv6 embedding, dotted or hex', () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false });
  for (const [address, form] of EMBEDDED_INWARD) assert.ok(guard.refusal(address), `${address} (${form}) should be refused`);
});

it('lets the same embeddings of a public IPv4 address through', () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false });
  // 93.184.216.34 = 5db8:d822; inverted for Teredo = a247:27dd.
  for (const address of ['::ffff:93.184.216.34', '::ffff:5db8:d822', '64:ff9b::5db8:d822', '2002:5db8:d822::1', '2001:0:4136:e378:8000:63bf:a247:27dd', '2606:4700::1111']) {
    assert.equal(guard.refusal(address), undefined, address);
  }
});

it('decodes every IPv6 spelling to the same 16 bytes, and the embedded IPv4 address by its form', () => {
  const same: [string, ...string[]] = ['::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1', '0000:0000:0000:0000:0000:FFFF:7F00:0001', '::ffff:7f00:0001'];
  for (const text of same) assert.deepEqual(parseIPv6(text), parseIPv6(same[0]), text);
  assert.deepEqual([...parseIPv6('1::')!], [0, 1, ...new Array(14).fill(0)]);
  assert.deepEqual([...parseIPv6('::')!], new Array(16).fill(0));
  assert.equal(parseIPv6('127.0.0.1'), undefined);
  assert.equal(parseIPv6('::ffff:1.2.3'), undefined);
  const cases: Array<[string, string, string]> = [
    ['::ffff:7f00:1', '127.0.0.1', 'IPv4-mapped'],
    ['::ffff:0:a9fe:a9fe', '169.254.169.254', 'IPv4-translated'],
    ['::c0a8:101', '192.168.1.1', 'IPv4-compatible'],
    ['64:ff9b::a00:1', '10.0.0.1', 'NAT64'],
    ['2002:ac10:0001:ffff::', '172.16.0.1', '6to4'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', '192.0.2.45', 'Teredo'],
  ];
  for (const [v6, v4, form] of cases) assert.deepEqual(embeddedIPv4(parseIPv6(v6)!), { address: v4, form }, v6);
  assert.equal(embeddedIPv4(parseIPv6('2606:4700::1111')!), undefined);
});

it('an allowed IPv4 network is allowed through its embeddings too, and nothing else is', () => {
  const guard = new UrlGuard({ allowPrivateNetworks: ['127.0.0.0/8'], httpsOnly: false });
  assert.equal(guard.refusal('::ffff:7f00:1'), undefined);
  assert.equal(guard.refusal('64:ff9b::7f00:1'), undefined);
  assert.ok(guard.refusal('64:ff9b::a9fe:a9fe'));
  assert.ok(guard.refusal('::1'), 'IPv6 loopback is its own network');
});

it('refuses the embedded forms at registration, as the URL parser rewrites them', async () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false });
  for (const host of ['[64:ff9b::127.0.0.1]', '[64:ff9b::a9fe:a9fe]', '[::ffff:0:7f00:1]', '[::127.0.0.1]', '[2002:7f00:1::]', '[fec0::1]', '[::ffff:127.0.0.1]', '[2001:0:4136:e378:8000:63bf:80ff:fffe]']) {
    await assert.rejects(guard.checkUrl(`http://${host}/hook`), (e: unknown) => e instanceof HeraldError && e.code === 'unprocessable', host);
  }
  assert.equal((await guard.checkUrl('http://[2002:5db8:d822::1]/hook')).hostname, '[2002:5db8:d822::1]');
});

it('refuses them after resolution, on the connection path', async () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false });
  // dns.lookup answers an address literal with itself, so these reach the check on the resolved answer.
  const resolve = (host: string) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((done) => guard.lookup(host, {}, (err, address) => done({ err, address })));
  for (const host of ['64:ff9b::7f00:1', '::ffff:0:7f00:1', '::7f00:1', '2002:7f00:1::', 'fec0::1', '2001::5601:5601', '127.0.0.1']) {
    const { err } = await resolve(host);
    assert.equal(err?.code, 'ESSRF', host);
  }
  const ok = await resolve('93.184.216.34');
  assert.equal(ok.err, null);
  assert.equal(ok.address, '93.184.216.34');
});
