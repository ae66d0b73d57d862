// The one strict config schema. Every field has its default here; docs/config.md mirrors it.
import { isIP } from 'node:net';
import { z } from 'zod';
import { duration, size } from './units.ts';

const cidr = z.string().refine((v) => {
  const [addr, bits, ...rest] = v.split('/');
  if (rest.length > 0 || !addr || !isIP(addr)) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (isIP(addr) === 4 ? 32 : 128);
}, 'must be an IP address or CIDR such as 10.0.0.0/8');

const publicPath = z
  .string()
  .regex(/^\/[^\s?#]*$/, 'must be an absolute path starting with "/" without query or fragment')
  .transform((p) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p));

const upstreamUrl = z.string().transform((v, ctx) => {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a URL` });
    return z.NEVER;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `scheme must be http or https, got "${url.protocol}"` });
    return z.NEVER;
  }
  if (url.username || url.password || url.search || url.hash) {
    ctx.addIssue({ code: 'custom', message: 'must not contain credentials, a query or a fragment' });
    return z.NEVER;
  }
  return url.href;
});

export const listenerSchema = z.strictObject({
  /** Address to bind. Default 127.0.0.1: loopback, as the MCP spec advises for local servers. */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 picks a free one. Default 8080. */
  port: z.number().int().min(0).max(65535).default(8080),
});

export const routeSchema = z.strictObject({
  /** Public path prefix, e.g. /mcp. A request matches it exactly or below it (/mcp/...). Longest prefix wins. */
  path: publicPath,
  /** Upstream base URL; the part of the request path below `path` is appended to it. */
  upstream: upstreamUrl,
  /** Send the client's Host upstream instead of the upstream's own. Default false (like nginx's $proxy_host). */
  preserveHost: z.boolean().default(false),
});

export const timeoutsSchema = z.strictObject({
  /** TCP (and TLS) connect to the upstream. Default 10s. Exceeded: 504. */
  connect: duration.default(10_000),
  /** From request sent to upstream response headers. Long tool calls answered as JSON need it high. Default 300s. */
  responseHeaders: duration.default(300_000),
  /** Longest upstream silence inside a response body; any byte resets it. 0 disables. Default 15m. */
  streamIdle: duration.default(900_000),
  /** Whole POST exchange, headers to last byte. 0 disables. GET streams are exempt. Default 1h. */
  request: duration.default(3_600_000),
  /** SSE comment heartbeat after this much downstream silence. 0 disables. Default 15s. */
  heartbeat: duration.default(15_000),
});

export const limitsSchema = z.strictObject({
  /** Largest request body. Larger: 413 before the body is read whole. Default 4MiB (the MCP SDK's cap). */
  body: size.default(4 * 1024 * 1024),
  /** Largest request head (request line + headers). Larger: 431. Default 16KiB. */
  headerBytes: size.default(16 * 1024),
  /** Most request header fields. More: 431. Default 100. */
  headerCount: z.number().int().positive().default(100),
  /** Most messages in a JSON-RPC batch (only protocol 2025-03-26 allows batches). Default 64. */
  batch: z.number().int().positive().default(64),
  /** Bytes a slow SSE client may leave unread in Sluice before its stream is closed. Default 4MiB. */
  sseClientBuffer: size.default(4 * 1024 * 1024),
});

export const loggingSchema = z.strictObject({
  /** pino level for the process log. Default info. */
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON line per exchange. Default true. */
  access: z.boolean().default(true),
});

const sessionKey = z.string().refine((k) => /^[A-Za-z0-9_-]+={0,2}$/.test(k) && Buffer.from(k, 'base64url').length === 32, 'must be 32 random bytes, base64url (sluice sessions new-key)');

export const sessionsSchema = z.strictObject({
  /**
   * Session-token keys, base64url 32-byte, newest first: the newest seals, all open. Empty: taken
   * from SLUICE_SESSION_KEYS, else one is generated at start (sessions then die with the process
   * and do not span Sluice replicas; a warning says so).
   */
  keys: z.array(sessionKey).default([]),
});

export const shutdownSchema = z.strictObject({
  /** How long in-flight POSTs may run after SIGTERM. Default 30s. */
  drain: duration.default(30_000),
  /** `retry:` hint (ms) written to SSE streams closed by shutdown. Default 1000. */
  retryHint: duration.default(1_000),
});

export const configSchema = z.strictObject({
  /** Listeners. Default one on 127.0.0.1:8080. */
  listen: z.array(listenerSchema).min(1).default([{ host: '127.0.0.1', port: 8080 }]),
  /** Routes: public path prefix -> upstream. At least one. */
  routes: z.array(routeSchema).min(1, 'at least one route is needed'),
  timeouts: timeoutsSchema.default(timeoutsSchema.parse({})),
  limits: limitsSchema.default(limitsSchema.parse({})),
  /** Peers (IP or CIDR) whose X-Forwarded-* / Forwarded headers are trusted. Default none. */
  trustedProxies: z.array(cidr).default([]),
  logging: loggingSchema.default(loggingSchema.parse({})),
  sessions: sessionsSchema.default(sessionsSchema.parse({})),
  shutdown: shutdownSchema.default(shutdownSchema.parse({})),
}).superRefine((cfg, ctx) => {
  const seen = new Set<string>();
  cfg.routes.forEach((r, i) => {
    if (seen.has(r.path)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'path'], message: `duplicate route path "${r.path}"` });
    seen.add(r.path);
  });
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
