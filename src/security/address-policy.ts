// Which upstream addresses Sluice may connect to. Pure: judges URLs, names and IP addresses and
// says which rule refused them; the guarded connector (transport/) applies it at connect time.
// Addresses are parsed with ipaddr.js, never matched as text; IPv6 forms that carry an IPv4
// address (mapped, compatible, translated, NAT64, 6to4) are judged by the IPv4 address inside.
import ipaddr from 'ipaddr.js';

export type Rule =
  | 'malformed-url'
  | 'scheme'
  | 'https-required'
  | 'userinfo'
  | 'port'
  | 'unix-socket'
  | 'unresolvable'
  | 'localhost-name'
  | 'single-label-name'
  | 'metadata-name'
  | 'metadata'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'teredo'
  | 'unique-local'
  | 'site-local';

export type Verdict = { ok: true } | { ok: false; rule: Rule };

export interface AddressPolicy {
  /** Strict: refuse loopback, private, CGNAT and unique-local too (always so for user-registered upstreams). */
  readonly strict: boolean;
  /** Refuse plain http. */
  readonly requireHttps: boolean;
  /** CIDRs allowed whatever their category, cloud metadata included. */
  readonly allowCidrs: readonly string[];
  /** Host names allowed by name: the name rules and the address categories (not metadata) are skipped. */
  readonly allowHosts: readonly string[];
}

export const STRICT: AddressPolicy = Object.freeze({
  strict: true,
  requireHttps: false,
  allowCidrs: [],
  allowHosts: [],
});
export const TRUSTED: AddressPolicy = Object.freeze({
  strict: false,
  requireHttps: false,
  allowCidrs: [],
  allowHosts: [],
});

/** Categories an operator-written (trusted) route may reach unless it asks for the strict policy. */
const TRUSTED_OK = new Set<Rule>(['loopback', 'private', 'cgnat', 'unique-local']);

type Table = [ipaddr.IPv4 | ipaddr.IPv6, number, Rule][];
const table = (rows: [string, Rule][]): Table =>
  rows.map(([cidr, rule]) => {
    const [addr, bits] = ipaddr.parseCIDR(cidr);
    return [addr, bits, rule];
  });

// First match wins: metadata before the ranges that contain it.
const V4 = table([
  ['169.254.169.254/32', 'metadata'], // AWS, GCP, Azure, OpenStack, DigitalOcean...
  ['169.254.170.2/32', 'metadata'], // AWS ECS task metadata
  ['169.254.169.123/32', 'metadata'], // AWS time sync (same plane)
  ['100.100.100.200/32', 'metadata'], // Alibaba Cloud
  ['192.0.0.192/32', 'metadata'], // Oracle Cloud
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'cgnat'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'documentation'],
  ['192.31.196.0/24', 'reserved'],
  ['192.52.193.0/24', 'reserved'],
  ['192.88.99.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['192.175.48.0/24', 'reserved'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
]);

const V6 = table([
  ['fd00:ec2::254/128', 'metadata'], // AWS IMDS over IPv6
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['2001::/32', 'teredo'],
  ['2001:2::/48', 'benchmarking'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['2001::/23', 'reserved'],
  ['100::/64', 'reserved'],
  ['64:ff9b:1::/48', 'reserved'], // local-use NAT64: the IPv4 part's place depends on the operator's prefix length
  ['5f00::/16', 'reserved'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
]);

// IPv6 prefixes whose low bits (or, for 6to4, bits 16-47) are an IPv4 address.
const EMBEDDED = table([
  ['::ffff:0:0/96', 'reserved'], // mapped
  ['::ffff:0:0:0/96', 'reserved'], // translated (SIIT)
  ['64:ff9b::/96', 'reserved'], // NAT64 well-known
  ['::/96', 'reserved'], // compatible (deprecated)
]);
const SIX_TO_FOUR = ipaddr.parseCIDR('2002::/16');
const GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');

function lookupTable(addr: ipaddr.IPv4 | ipaddr.IPv6, rows: Table): Rule | undefined {
  for (const [net, bits, rule] of rows) if (addr.kind() === net.kind() && addr.match(net, bits)) return rule;
  return undefined;
}

/** The IPv4 address carried inside an IPv6 one, if it is of a form that carries one. */
export function embeddedIPv4(v6: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const b = v6.toByteArray();
  if (v6.match(SIX_TO_FOUR)) return new ipaddr.IPv4(b.slice(2, 6));
  if (lookupTable(v6, EMBEDDED)) {
    // ::/128 and ::1/128 sit inside ::/96 but are the IPv6 unspecified and loopback addresses.
    if (b.slice(0, 15).every((x) => x === 0) && (b[15] === 0 || b[15] === 1)) return undefined;
    return new ipaddr.IPv4(b.slice(12, 16));
  }
  return undefined;
}

/** The category of an address, or undefined for an ordinary public unicast address. */
export function categorize(ip: string): Rule | undefined {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // Only canonical forms reach here (WHATWG URL or resolver output); refuse anything else.
    if (!ipaddr.isValid(ip) || ip.includes('%')) return 'malformed-url';
    addr = ipaddr.parse(ip);
  } catch {
    return 'malformed-url';
  }
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    const inner = embeddedIPv4(v6);
    if (inner) return lookupTable(inner, V4);
    const rule = lookupTable(v6, V6);
    if (rule) return rule;
    return v6.match(GLOBAL_UNICAST) ? undefined : 'reserved';
  }
  return lookupTable(addr, V4);
}

/** Judge one IP address under a policy. */
export function judgeAddress(ip: string, policy: AddressPolicy, hostAllowed = false): Verdict {
  const rule = categorize(ip);
  if (rule === undefined) return { ok: true };
  if (policy.allowCidrs.length > 0 && inCidrs(ip, policy.allowCidrs)) return { ok: true };
  if (rule === 'metadata' || rule === 'malformed-url') return { ok: false, rule };
  if (hostAllowed) return { ok: true };
  if (!policy.strict && TRUSTED_OK.has(rule)) return { ok: true };
  return { ok: false, rule };
}

function inCidrs(ip: string, cidrs: readonly string[]): boolean {
  const addr = ipaddr.process(ip);
  for (const c of cidrs) {
    const [net, bits] = c.includes('/') ? ipaddr.parseCIDR(c) : [ipaddr.process(c), c.includes(':') ? 128 : 32];
    const n =
      net.kind() === 'ipv6' && (net as ipaddr.IPv6).isIPv4MappedAddress() ? (net as ipaddr.IPv6).toIPv4Address() : net;
    if (addr.kind() === n.kind() && addr.match(n, bits)) return true;
  }
  return false;
}

const METADATA_NAMES = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.internal',
  'metadata.tencentyun.com',
]);

/** Canonical host name: lower case, one trailing dot removed, brackets off IPv6 literals. */
export function canonicalHost(hostname: string): string {
  let h = hostname.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) return h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** Judge a host name before it is resolved (IP literals are judged as addresses). */
export function judgeName(hostname: string, policy: AddressPolicy): Verdict {
  const h = canonicalHost(hostname);
  if (ipaddr.isValid(h)) return judgeAddress(h, policy);
  if (isAllowedHost(h, policy)) return METADATA_NAMES.has(h) ? { ok: false, rule: 'metadata-name' } : { ok: true };
  if (METADATA_NAMES.has(h)) return { ok: false, rule: 'metadata-name' };
  if (!policy.strict) return { ok: true };
  if (h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.localdomain')
    return { ok: false, rule: 'localhost-name' };
  if (!h.includes('.')) return { ok: false, rule: 'single-label-name' };
  return { ok: true };
}

export function isAllowedHost(hostname: string, policy: AddressPolicy): boolean {
  const h = canonicalHost(hostname);
  return policy.allowHosts.some((a) => canonicalHost(a) === h);
}

// Anything the WHATWG parser would silently drop or rewrite: C0 controls, space, DEL, backslash.
const REPAIRED = /[\u0000-\u0020\u007f\\]/;

/**
 * Judge a URL as written: it must parse without repair, be http(s), carry no userinfo and no
 * port 0, and its host must pass the name rules. Returns the parsed URL when it passes.
 */
export function judgeUrl(raw: string, policy: AddressPolicy): { ok: true; url: URL } | { ok: false; rule: Rule } {
  if (REPAIRED.test(raw)) return { ok: false, rule: 'malformed-url' };
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(raw)?.[1]?.toLowerCase();
  if (scheme === undefined) return { ok: false, rule: 'malformed-url' };
  if (scheme !== 'http' && scheme !== 'https')
    return { ok: false, rule: scheme === 'unix' || scheme === 'http+unix' ? 'unix-socket' : 'scheme' };
  if (!/^https?:\/\/[^/?#]/i.test(raw)) return { ok: false, rule: 'malformed-url' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, rule: 'malformed-url' };
  }
  if (url.username || url.password || /^https?:\/\/[^/?#]*@/i.test(raw)) return { ok: false, rule: 'userinfo' };
  if (policy.requireHttps && url.protocol !== 'https:') return { ok: false, rule: 'https-required' };
  if (url.port === '0' || /^https?:\/\/[^/?#]*:0+(?:[/?#]|$)/i.test(raw)) return { ok: false, rule: 'port' };
  const name = judgeName(url.hostname, policy);
  return name.ok ? { ok: true, url } : name;
}

/** A short human reason per rule, for error messages and `sluice check-upstream`. */
export const RULE_TEXT: Record<Rule, string> = {
  'malformed-url': 'the URL is malformed or needed repair by the URL parser',
  scheme: 'only http and https upstreams are allowed',
  'https-required': 'this policy requires https',
  userinfo: 'credentials in the URL are not allowed',
  port: 'port 0 is not allowed',
  'unix-socket': 'unix sockets are not allowed',
  unresolvable: 'the host name does not resolve',
  'localhost-name': 'localhost names are not allowed',
  'single-label-name': 'single-label host names are not allowed',
  'metadata-name': 'cloud metadata host names are not allowed',
  metadata: 'cloud metadata addresses are not allowed',
  unspecified: 'unspecified addresses are not allowed',
  loopback: 'loopback addresses are not allowed',
  private: 'private addresses are not allowed',
  cgnat: 'carrier-grade NAT addresses are not allowed',
  'link-local': 'link-local addresses are not allowed',
  multicast: 'multicast addresses are not allowed',
  broadcast: 'broadcast addresses are not allowed',
  reserved: 'reserved addresses are not allowed',
  documentation: 'documentation addresses are not allowed',
  benchmarking: 'benchmarking addresses are not allowed',
  teredo: 'Teredo addresses are not allowed',
  'unique-local': 'unique-local IPv6 addresses are not allowed',
  'site-local': 'site-local IPv6 addresses are not allowed',
};
