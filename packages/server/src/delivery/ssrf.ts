import { BlockList, isIP } from 'node:net';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { HeraldError } from '@herald/protocol';
import { systemResolveAll, type ResolveAll } from './lookup-gate.js';

/** Addresses no webhook may reach unless allowed: loopback, private, link-local (cloud metadata), multicast, reserved. */
const BLOCKED_V4 = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const;
const BLOCKED_V6 = [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32], ['3fff::', 20],
  ['100::', 64], ['2001:2::', 48], ['2001:10::', 28],
  // Local-use NAT64 (RFC 8215): translates into the operator's own network, and where the IPv4 address sits
  // depends on a prefix length only that network knows. Never globally reachable, so refused whole.
  ['64:ff9b:1::', 48],
] as const;

/**
 * An IPv6 address (as `net.isIPv6` accepts it, any casing, `::`, a trailing
 * dotted quad, a `%zone`) as 16 bytes; undefined when it is not one. A
 * single left-to-right pass, no regex.
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  const zone = text.indexOf('%');
  const address = zone < 0 ? text : text.slice(0, zone);
  if (isIP(address) !== 6) return undefined;
  const words: number[] = [];
  let gap = -1;
  const groups = address.split(':');
  // "::" at either end leaves an empty group beside the empty group that marks the gap.
  let start = 0;
  let end = groups.length;
  if (address.startsWith('::')) start = 1;
  if (address.endsWith('::')) end -= 1;
  for (let i = start; i < end; i++) {
    const group = groups[i]!;
    if (group === '') {
      gap = words.length;
    } else if (group.includes('.')) {
      const octets = group.split('.').map(Number);
      words.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
    } else {
      words.push(parseInt(group, 16));
    }
  }
  const full = gap < 0 ? words : [...words.slice(0, gap), ...new Array<number>(8 - words.length).fill(0), ...words.slice(gap)];
  if (full.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  full.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}

const v4At = (bytes: Uint8Array, at: number, xor = 0) =>
  `${bytes[at]! ^ xor}.${bytes[at + 1]! ^ xor}.${bytes[at + 2]! ^ xor}.${bytes[at + 3]! ^ xor}`;

/**
 * The IPv4 address an IPv6 address carries, in every form that reaches it:
 * IPv4-mapped `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`,
 * IPv4-compatible `::/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16` (bits
 * 16–47) and Teredo `2001::/32` (the client, the last 32 bits inverted).
 */
export function embeddedIPv4(bytes: Uint8Array): { address: string; form: string } | undefined {
  const zeroes = (from: number, to: number) => bytes.subarray(from, to).every((b) => b === 0);
  const word = (i: number) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!;
  if (zeroes(0, 10) && word(5) === 0xffff) return { address: v4At(bytes, 12), form: 'IPv4-mapped' };
  if (zeroes(0, 8) && word(4) === 0xffff && word(5) === 0) return { address: v4At(bytes, 12), form: 'IPv4-translated' };
  if (zeroes(0, 12)) return { address: v4At(bytes, 12), form: 'IPv4-compatible' };
  if (word(0) === 0x64 && word(1) === 0xff9b && zeroes(4, 12)) return { address: v4At(bytes, 12), form: 'NAT64' };
  if (word(0) === 0x2002) return { address: v4At(bytes, 2), form: '6to4' };
  if (word(0) === 0x2001 && word(1) === 0) return { address: v4At(bytes, 12, 0xff), form: 'Teredo' };
  return undefined;
}

/** The eight words in full hex, which `BlockList` reads without surprises (no zone, no dotted tail). */
function canonicalIPv6(bytes: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return words.join(':');
}

export function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', prefixText, ...rest] = cidr.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) throw new Error(`Not a CIDR: ${cidr}`);
  // Digits only: Number('') is 0, so `10.0.0.0/` (a typo) would otherwise allow every address as a /0.
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) throw new Error(`Not a CIDR: ${cidr}`);
  const prefix = prefixText === undefined ? (version === 4 ? 32 : 128) : Number(prefixText);
  if (prefix > (version === 4 ? 32 : 128)) throw new Error(`Not a CIDR: ${cidr}`);
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * The SSRF guard: checked once when an endpoint is registered, and again on
 * every connection, after DNS resolution, through the HTTP client's lookup
 * hook, so a name that later resolves inward is still refused.
 */
export class UrlGuard {
  private readonly blocked = new BlockList();
  private readonly allowed = new BlockList();

  /**
   * How names are resolved: a LookupGate's (the server's, so endpoint hosts never hold every thread of the pool),
   * `dns.lookup`, or a stand-in in tests (a name that resolves inward, a DNS failure).
   */
  private readonly resolve: ResolveAll;

  constructor(private readonly options: { allowPrivateNetworks: readonly string[]; httpsOnly: boolean; resolve?: ResolveAll | undefined }) {
    this.resolve = options.resolve ?? systemResolveAll;
    for (const [address, prefix] of BLOCKED_V4) this.blocked.addSubnet(address, prefix, 'ipv4');
    for (const [address, prefix] of BLOCKED_V6) this.blocked.addSubnet(address, prefix, 'ipv6');
    for (const cidr of options.allowPrivateNetworks) {
      const { address, prefix, family } = parseCidr(cidr);
      this.allowed.addSubnet(address, prefix, family);
    }
  }

  /**
   * Why an address may not be reached, or undefined when it may. An IPv6
   * address that carries an IPv4 address is judged by that address too, so
   * `[::ffff:7f00:1]`, `[64:ff9b::a9fe:a9fe]` or `[2002:7f00:1::]` is loopback
   * or metadata like the IPv4 address it reaches.
   */
  refusal(address: string): string | undefined {
    const version = isIP(address);
    if (version === 4) {
      if (this.allowed.check(address, 'ipv4')) return undefined;
      if (this.blocked.check(address, 'ipv4')) return `${address} is a private, loopback, link-local, multicast or reserved address`;
      return undefined;
    }
    const bytes = parseIPv6(address);
    if (!bytes) return `${address} is not an IP address`;
    const canonical = canonicalIPv6(bytes);
    if (this.allowed.check(canonical, 'ipv6')) return undefined;
    if (this.blocked.check(canonical, 'ipv6')) return `${address} is a private, loopback, link-local, multicast or reserved address`;
    const embedded = embeddedIPv4(bytes);
    if (!embedded) return undefined;
    const why = this.refusal(embedded.address);
    return why && `${address} reaches ${embedded.address} (${embedded.form}): ${why}`;
  }

  /** Registration check: the URL's form, then every address its host resolves to. */
  async checkUrl(text: string): Promise<URL> {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new HeraldError('bad_request', `Not a URL: ${JSON.stringify(text)}.`);
    }
    if (url.protocol !== 'https:' && (url.protocol !== 'http:' || this.options.httpsOnly)) {
      throw new HeraldError('unprocessable', this.options.httpsOnly ? 'Endpoints must use https.' : 'Endpoints use http or https.');
    }
    if (url.username || url.password) throw new HeraldError('unprocessable', 'Put credentials in headers, not in the URL.');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    if (isIP(host)) {
      addresses = [host];
    } else {
      try {
        addresses = (await new Promise<LookupAddress[]>((resolve, reject) =>
          this.resolve(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list))),
        )).map((a) => a.address);
      } catch (error) {
        const slow = (error as NodeJS.ErrnoException).code === 'ETIMEOUT';
        throw new HeraldError('unprocessable', slow ? `Cannot resolve ${host}: ${(error as Error).message}.` : `Cannot resolve ${host}.`);
      }
    }
    for (const address of addresses) {
      const why = this.refusal(address);
      // Named for the admin, who registers most endpoints; a portal session's refusal is rewritten (portal/tenancy.ts).
      if (why) {
        throw new HeraldError(
          'unprocessable',
          `Refused ${url.origin}: ${why}. Allow it with delivery.allowPrivateNetworks (HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS, CIDRs such as 127.0.0.0/8).`,
        );
      }
    }
    return url;
  }

  /** A `dns.lookup` replacement for the HTTP client: resolves, then refuses blocked answers. */
  readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    this.resolve(hostname, { all: true, family: options.family, hints: options.hints }, (err, list) => {
      if (err) return callback(err, '');
      const refused = list.map((a) => this.refusal(a.address)).find(Boolean);
      if (refused) {
        const error: NodeJS.ErrnoException = new Error(`SSRF guard: ${hostname} resolves to ${refused}`);
        error.code = 'ESSRF';
        return callback(error, '');
      }
      if (options.all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  };
}
