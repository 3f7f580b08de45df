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

/** Every blocked range by its first and last address, and the neighbours just outside it, which are not blocked. */
const RANGES: Array<[range: string, inside: string[], outside: string[]]> = [
  ['0.0.0.0/8', ['0.0.0.0', '0.255.255.255'], ['1.0.0.0']],
  ['10.0.0.0/8', ['10.0.0.0', '10.255.255.255'], ['9.255.255.255', '11.0.0.0']],
  ['100.64.0.0/10', ['100.64.0.0', '100.127.255.255'], ['100.63.255.255', '100.128.0.0']],
  ['127.0.0.0/8', ['127.0.0.0', '127.255.255.255'], ['126.255.255.255', '128.0.0.0']],
  ['169.254.0.0/16', ['169.254.0.0', '169.254.255.255'], ['169.253.255.255', '169.255.0.0']],
  ['172.16.0.0/12', ['172.16.0.0', '172.31.255.255'], ['172.15.255.255', '172.32.0.0']],
  ['192.0.0.0/24', ['192.0.0.0', '192.0.0.255'], ['191.255.255.255', '192.0.1.0']],
  ['192.0.2.0/24', ['192.0.2.0', '192.0.2.255'], ['192.0.1.255', '192.0.3.0']],
  ['192.88.99.0/24', ['192.88.99.0', '192.88.99.255'], ['192.88.98.255', '192.88.100.0']],
  ['192.168.0.0/16', ['192.168.0.0', '192.168.255.255'], ['192.167.255.255', '192.169.0.0']],
  ['198.18.0.0/15', ['198.18.0.0', '198.19.255.255'], ['198.17.255.255', '198.20.0.0']],
  ['198.51.100.0/24', ['198.51.100.0', '198.51.100.255'], ['198.51.99.255', '198.51.101.0']],
  ['203.0.113.0/24', ['203.0.113.0', '203.0.113.255'], ['203.0.112.255', '203.0.114.0']],
  ['224.0.0.0/4', ['224.0.0.0', '239.255.255.255'], ['223.255.255.255']],
  ['240.0.0.0/4', ['240.0.0.0', '255.255.255.255'], []],
  ['::/128', ['::'], []],
  ['::1/128', ['::1'], []],
  ['fc00::/7', ['fc00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'], ['fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fe00::']],
  ['fe80::/10', ['fe80::', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'], ['fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['fec0::/10', ['fec0::', 'feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'], []],
  ['ff00::/8', ['ff00::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'], []],
  ['2001:db8::/32', ['2001:db8::', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'], ['2001:db7:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db9::']],
  ['3fff::/20', ['3fff::', '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff'], ['3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '3fff:1000::']],
  ['100::/64', ['100::', '100::ffff:ffff:ffff:ffff'], ['ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '100:0:0:1::']],
  ['2001:2::/48', ['2001:2::', '2001:2:0:ffff:ffff:ffff:ffff:ffff'], ['2001:1:ffff:ffff:ffff:ffff:ffff:ffff', '2001:2:1::']],
  ['2001:10::/28', ['2001:10::', '2001:1f:ffff:ffff:ffff:ffff:ffff:ffff'], ['2001:f:ffff:ffff:ffff:ffff:ffff:ffff', '2001:20::']],
  ['64:ff9b:1::/48', ['64:ff9b:1::', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff'], ['64:ff9b:0:ffff:ffff:ffff:ffff:ffff', '64:ff9b:2::']],
];

it('blocks each reserved range from its first address to its last, and not a step beyond', () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false });
  for (const [range, inside, outside] of RANGES) {
    for (const address of inside) {
      assert.equal(guard.refusal(address), `${address} is a private, loopback, link-local, multicast or reserved address`, `${address} in ${range}`);
    }
    for (const address of outside) assert.equal(guard.refusal(address), undefined, `${address} next to ${range}`);
  }
});

it('explains an embedded refusal by the address it reaches and the form that carries it', () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false });
  assert.equal(
    guard.refusal('64:ff9b::7f00:1'),
    '64:ff9b::7f00:1 reaches 127.0.0.1 (NAT64): 127.0.0.1 is a private, loopback, link-local, multicast or reserved address',
  );
  assert.equal(guard.refusal('not-an-address'), 'not-an-address is not an IP address');
  assert.equal(guard.refusal('1.2.3'), '1.2.3 is not an IP address');
});

it('allows configured IPv6 networks and single addresses, and refuses CIDRs that are not', () => {
  const guard = new UrlGuard({ allowPrivateNetworks: ['fd00:1::/32', '::1', '10.1.2.3'], httpsOnly: false });
  assert.equal(guard.refusal('fd00:1::5'), undefined);
  assert.equal(guard.refusal('fd00:1:ffff::5'), undefined);
  assert.ok(guard.refusal('fd00:2::5'), 'outside the allowed /32');
  assert.equal(guard.refusal('::1'), undefined, 'a bare address is a /128');
  assert.equal(guard.refusal('10.1.2.3'), undefined, 'a bare IPv4 address is a /32');
  assert.ok(guard.refusal('10.1.2.4'));
  // `10.0.0.0/` once read as a /0 (Number('') is 0): a typo that allowed every address.
  for (const bad of ['10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/8.5', '10.0.0.0/x', '10.0.0.0/ 8', '10.0.0.0/0x8', 'fd00::/129', 'fd00::/1280', 'example.com/8', '', '10.0.0.0/', '10.0.0.0/8/8']) {
    assert.throws(() => new UrlGuard({ allowPrivateNetworks: [bad], httpsOnly: false }), new RegExp(`^Error: Not a CIDR: ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`), bad);
  }
  assert.doesNotThrow(() => new UrlGuard({ allowPrivateNetworks: ['10.0.0.0/0', '10.0.0.0/32', '::/0', '::/128'], httpsOnly: false }));
});

it('says why a URL is refused at registration', async () => {
  const check = async (options: { httpsOnly: boolean }, url: string) => {
    try {
      await new UrlGuard({ allowPrivateNetworks: [], ...options }).checkUrl(url);
      return 'accepted';
    } catch (error) {
      assert.ok(error instanceof HeraldError);
      return `${error.code}: ${error.message}`;
    }
  };
  assert.equal(await check({ httpsOnly: true }, 'http://93.184.216.34/'), 'unprocessable: Endpoints must use https.');
  assert.equal(await check({ httpsOnly: false }, 'ftp://93.184.216.34/'), 'unprocessable: Endpoints use http or https.');
  assert.equal(await check({ httpsOnly: true }, 'ftp://93.184.216.34/'), 'unprocessable: Endpoints must use https.');
  assert.equal(await check({ httpsOnly: false }, 'http://93.184.216.34/'), 'accepted');
  assert.equal(await check({ httpsOnly: false }, 'https://93.184.216.34/'), 'accepted');
  assert.equal(await check({ httpsOnly: false }, 'http://user@93.184.216.34/'), 'unprocessable: Put credentials in headers, not in the URL.');
  assert.equal(await check({ httpsOnly: false }, 'http://:pw@93.184.216.34/'), 'unprocessable: Put credentials in headers, not in the URL.');
  assert.equal(await check({ httpsOnly: false }, 'nope'), 'bad_request: Not a URL: "nope".');
  assert.equal(
    await check({ httpsOnly: false }, 'http://10.0.0.1:8080/x'),
    'unprocessable: Refused http://10.0.0.1:8080: 10.0.0.1 is a private, loopback, link-local, multicast or reserved address. ' +
      'Allow it with delivery.allowPrivateNetworks (HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS, CIDRs such as 127.0.0.0/8).',
  );
  assert.match(await check({ httpsOnly: false }, 'http://[::1]/'), /^unprocessable: Refused http:\/\/\[::1\]: ::1 is a private/);
  // A name is resolved (localhost from the hosts file: these tests send nothing to a DNS server), and every address it has is checked.
  assert.match(await check({ httpsOnly: false }, 'http://localhost/'), /^unprocessable: Refused http:\/\/localhost: (127\.0\.0\.1|::1) is a private/);
});

it('the connection-time lookup passes errors through and answers in the form asked for', async () => {
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false });
  const lookup = (host: string, options: object) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family: unknown }>((done) =>
      guard.lookup(host, options, (err, address, family) => done({ err, address, family })),
    );
  const single = await lookup('93.184.216.34', {});
  assert.deepEqual(single, { err: null, address: '93.184.216.34', family: 4 });
  const all = await lookup('93.184.216.34', { all: true });
  assert.deepEqual(all, { err: null, address: [{ address: '93.184.216.34', family: 4 }], family: undefined });
  const refused = await lookup('10.0.0.1', { all: true });
  assert.equal(refused.err?.code, 'ESSRF');
  assert.equal(refused.err?.message, 'SSRF guard: 10.0.0.1 resolves to 10.0.0.1 is a private, loopback, link-local, multicast or reserved address');
  assert.equal(refused.address, '');
  const allowed = new UrlGuard({ allowPrivateNetworks: ['127.0.0.0/8', '::1'], httpsOnly: false });
  const local = await new Promise<{ err: unknown; address: unknown }>((done) => allowed.lookup('localhost', { all: true }, (err, address) => done({ err, address })));
  assert.equal(local.err, null);
  assert.ok(Array.isArray(local.address) && local.address.length >= 1);
});

it('parses IPv6 forms exactly: zones, a gap at either end, and refuses what is not IPv6', () => {
  assert.deepEqual([...parseIPv6('fe80::1%eth0')!], [0xfe, 0x80, ...new Array(13).fill(0), 1]);
  assert.deepEqual([...parseIPv6('::2')!], [...new Array(15).fill(0), 2]);
  assert.deepEqual([...parseIPv6('1:2:3:4:5:6:7::')!], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]);
  assert.deepEqual([...parseIPv6('::2:3:4:5:6:7:8')!], [0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  assert.deepEqual([...parseIPv6('1:2:3:4:5:6:7:8')!], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  assert.deepEqual([...parseIPv6('ab:cd::ef')!], [0, 0xab, 0, 0xcd, ...new Array(10).fill(0), 0, 0xef]);
  assert.deepEqual([...parseIPv6('::1.2.3.4')!], [...new Array(12).fill(0), 1, 2, 3, 4]);
  assert.deepEqual([...parseIPv6('::ffff:255.254.253.252')!], [...new Array(10).fill(0), 0xff, 0xff, 255, 254, 253, 252]);
  assert.deepEqual([...parseIPv6('1:2:3:4:5:6:1.2.3.4')!], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]);
  assert.deepEqual([...parseIPv6('ffff:fffe::')!], [0xff, 0xff, 0xff, 0xfe, ...new Array(12).fill(0)]);
  for (const bad of ['', '1.2.3.4', ':::', '1::2::3', 'g::1', '1:2:3:4:5:6:7:8:9', '%eth0']) assert.equal(parseIPv6(bad), undefined, bad);
});

it('finds the IPv4 address in each embedding only where the form says it is', () => {
  const embedded = (v6: string) => embeddedIPv4(parseIPv6(v6)!);
  // Each form's near misses carry nothing (or another form).
  assert.equal(embedded('::1:ffff:7f00:1'), undefined, 'mapped needs zeroes before ffff');
  assert.equal(embedded('1::ffff:0:7f00:1'), undefined, 'translated needs zeroes before ffff:0');
  assert.deepEqual(embedded('::ffff:1:7f00:1'), undefined, 'ffff:1 is neither mapped nor translated');
  assert.equal(embedded('::1:0:7f00:1'), undefined, 'compatible needs twelve zero bytes');
  assert.equal(embedded('64:ff9b:0:1::7f00:1'), undefined, 'NAT64 needs zeroes in the middle');
  assert.equal(embedded('64:ff9c::7f00:1'), undefined);
  assert.equal(embedded('65:ff9b::7f00:1'), undefined);
  assert.equal(embedded('2003:7f00:1::'), undefined, 'only 2002::/16 is 6to4');
  assert.equal(embedded('2001:1::5601:5601'), undefined, 'only 2001:0::/32 is Teredo');
  assert.deepEqual(embedded('::ffff:0:0'), { address: '0.0.0.0', form: 'IPv4-mapped' });
  assert.deepEqual(embedded('::'), { address: '0.0.0.0', form: 'IPv4-compatible' });
  assert.deepEqual(embedded('64:ff9b::1.2.3.4'), { address: '1.2.3.4', form: 'NAT64' });
  assert.deepEqual(embedded('2002:102:304:5:6:7:8:9'), { address: '1.2.3.4', form: '6to4' });
  assert.deepEqual(embedded('2001:0:1:2:3:4:feff:fefe'), { address: '1.0.1.1', form: 'Teredo' });
});

/** A resolver that answers from a table (or fails), standing in for DNS: no query leaves the machine. */
function fakeResolver(answers: Record<string, string[] | Error>, asked: string[] = []) {
  const resolve = (host: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, list: Array<{ address: string; family: number }>) => void) => {
    asked.push(host);
    const answer = answers[host] ?? Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    if (answer instanceof Error) return void setImmediate(() => callback(answer, undefined as never));
    setImmediate(() => callback(null, answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))));
  };
  return resolve as unknown as NonNullable<ConstructorParameters<typeof UrlGuard>[0]['resolve']>;
}

it('checks every address a name resolves to at registration, and says when it cannot resolve', async () => {
  const asked: string[] = [];
  const guard = new UrlGuard({
    allowPrivateNetworks: [],
    httpsOnly: false,
    resolve: fakeResolver({ 'public.test': ['93.184.216.34', '2606:4700::1111'], 'mixed.test': ['93.184.216.34', '10.0.0.7'] }, asked),
  });
  assert.equal((await guard.checkUrl('http://public.test/hook')).hostname, 'public.test');
  await assert.rejects(
    guard.checkUrl('http://mixed.test/hook'),
    (e: unknown) => e instanceof HeraldError && e.code === 'unprocessable' && /^Refused http:\/\/mixed\.test: 10\.0\.0\.7 is a private/.test(e.message),
    'one inward address among several is enough to refuse',
  );
  await assert.rejects(
    guard.checkUrl('http://nowhere.test/hook'),
    (e: unknown) => e instanceof HeraldError && e.code === 'unprocessable' && e.message === 'Cannot resolve nowhere.test.',
  );
  assert.deepEqual(asked, ['public.test', 'mixed.test', 'nowhere.test']);
  // Literal addresses are judged as they are, without asking the resolver.
  await assert.rejects(guard.checkUrl('http://[::1]/'), (e: unknown) => e instanceof HeraldError && e.code === 'unprocessable');
  assert.equal((await guard.checkUrl('http://93.184.216.34/')).hostname, '93.184.216.34');
  assert.deepEqual(asked, ['public.test', 'mixed.test', 'nowhere.test']);
});

it('refuses at connection time a name that resolved outward at registration and inward now (DNS rebinding)', async () => {
  const answers: Record<string, string[] | Error> = { 'rebind.test': ['93.184.216.34'] };
  const guard = new UrlGuard({ allowPrivateNetworks: [], httpsOnly: false, resolve: fakeResolver(answers) });
  assert.equal((await guard.checkUrl('http://rebind.test/hook')).hostname, 'rebind.test');
  answers['rebind.test'] = ['169.254.169.254'];
  const connect = () =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family: unknown }>((done) =>
      guard.lookup('rebind.test', {}, (err, address, family) => done({ err, address, family })),
    );
  const refused = await connect();
  assert.equal(refused.err?.code, 'ESSRF');
  assert.equal(refused.err?.message, 'SSRF guard: rebind.test resolves to 169.254.169.254 is a private, loopback, link-local, multicast or reserved address');
  assert.equal(refused.address, '');
  answers['rebind.test'] = ['93.184.216.34', '::ffff:127.0.0.1'];
  assert.equal((await connect()).err?.code, 'ESSRF', 'any inward answer refuses the connection');
  answers['rebind.test'] = ['2606:4700::1111', '93.184.216.34'];
  assert.deepEqual(await connect(), { err: null, address: '2606:4700::1111', family: 6 }, 'the first answer, as dns.lookup gives it');
  const failure = Object.assign(new Error('getaddrinfo EAI_AGAIN rebind.test'), { code: 'EAI_AGAIN' });
  answers['rebind.test'] = failure;
  const failed = await connect();
  assert.equal(failed.err, failure, 'a DNS failure is passed on as it is');
  assert.equal(failed.address, '');
});

it('reads a zone after a dotted tail too', () => {
  assert.deepEqual(parseIPv6('::ffff:1.2.3.4%eth0'), parseIPv6('::ffff:1.2.3.4'));
  assert.deepEqual(parseIPv6('fe80::abcd%1'), parseIPv6('fe80::abcd'));
});
