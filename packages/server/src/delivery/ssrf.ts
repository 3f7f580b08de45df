import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { HeraldError } from '@herald/protocol';

/** Addresses no webhook may reach unless allowed: loopback, private, link-local (cloud metadata), multicast, reserved. */
const BLOCKED_V4 = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const;
const BLOCKED_V6 = [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64],
] as const;
/** IPv6 forms that carry an IPv4 address: judged by that address. */
const EMBEDDED_V4 = [/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, /^64:ff9b::(\d+\.\d+\.\d+\.\d+)$/i];

function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', prefixText] = cidr.split('/');
  const version = isIP(address);
  if (version === 0) throw new Error(`Not a CIDR: ${cidr}`);
  const prefix = prefixText === undefined ? (version === 4 ? 32 : 128) : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (version === 4 ? 32 : 128)) throw new Error(`Not a CIDR: ${cidr}`);
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

  constructor(private readonly options: { allowPrivateNetworks: readonly string[]; httpsOnly: boolean }) {
    for (const [address, prefix] of BLOCKED_V4) this.blocked.addSubnet(address, prefix, 'ipv4');
    for (const [address, prefix] of BLOCKED_V6) this.blocked.addSubnet(address, prefix, 'ipv6');
    for (const cidr of options.allowPrivateNetworks) {
      const { address, prefix, family } = parseCidr(cidr);
      this.allowed.addSubnet(address, prefix, family);
    }
  }

  /** Why an address may not be reached, or undefined when it may. */
  refusal(address: string): string | undefined {
    const embedded = EMBEDDED_V4.map((re) => re.exec(address)?.[1]).find(Boolean);
    if (embedded) return this.refusal(embedded);
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (this.allowed.check(address, family)) return undefined;
    if (this.blocked.check(address, family)) return `${address} is a private, loopback, link-local, multicast or reserved address`;
    return undefined;
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
          dnsLookup(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list))),
        )).map((a) => a.address);
      } catch {
        throw new HeraldError('unprocessable', `Cannot resolve ${host}.`);
      }
    }
    for (const address of addresses) {
      const why = this.refusal(address);
      if (why) throw new HeraldError('unprocessable', `Refused ${url.origin}: ${why}. Allow it with delivery.allowPrivateNetworks.`);
    }
    return url;
  }

  /** A `dns.lookup` replacement for the HTTP client: resolves, then refuses blocked answers. */
  readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, list) => {
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
