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
  // Refuse what the URL parser would silently repair (the address policy judges the same way).
  if (/[\u0000-\u0020\u007f\\]/.test(v) || !/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]/.test(v)) {
    ctx.addIssue({
      code: 'custom',
      message: `"${v.replace(/[\u0000-\u001f\u007f]/g, '?')}" is not a plain http(s)://host/... URL (whitespace, backslashes and missing slashes are not repaired)`,
    });
    return z.NEVER;
  }
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

const hostPattern = z
  .string()
  .regex(
    /^(\*\.)?[A-Za-z0-9.-]+$|^\[?[0-9A-Fa-f:.]+\]?$/,
    'must be a host name ("mcp.example.com", "*.example.com") or an IP address',
  );
const allowedOrigin = z
  .string()
  .refine(
    (v) => v === '*' || v === 'null' || /^https?:\/\/[^\s/?#]+$/.test(v),
    'must be "*", "null" or an origin such as https://app.example.com',
  );

export const listenerSchema = z.strictObject({
  /** Address to bind. Default 127.0.0.1: loopback, as the MCP spec advises for local servers. */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 picks a free one. Default 8080. */
  port: z.number().int().min(0).max(65535).default(8080),
  /**
   * Host names this listener answers (the DNS-rebinding defence). A loopback listener always
   * checks Host and allows localhost, 127.0.0.1 and ::1 plus these; another listener checks only
   * when some are listed. Default [].
   */
  allowHosts: z.array(hostPattern).default([]),
  /**
   * Origins allowed beyond same-origin (and loopback origins on a loopback listener); "*" for any. Other Origins get
   * 403. Default [].
   */
  allowOrigins: z.array(allowedOrigin).default([]),
  /** Serve HTTPS (TLS 1.2+) with these PEM files, reloaded when they change. Unset: plain HTTP. */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
});

export const egressSchema = z.strictObject({
  /**
   * Routes written in this file are trusted: their upstreams may be loopback, private, CGNAT or
   * unique-local. `strict: true` refuses those too, plus localhost and single-label names (the
   * policy user-registered upstreams always get). Cloud metadata addresses are refused either way.
   */
  strict: z.boolean().default(false),
  /** Refuse plain-http upstreams. Default false. */
  requireHttps: z.boolean().default(false),
  /** IPs/CIDRs allowed whatever their category (the only way to reach a metadata address). Default none. */
  allow: z.array(cidr).default([]),
  /**
   * Host names allowed by name: name rules and address categories (not metadata) are skipped for them. Default none.
   */
  allowHosts: z.array(z.string().min(1)).default([]),
});

/** A replica id travels inside session tokens: short, printable, stable across Sluice replicas. */
const replicaId = z.string().regex(/^[A-Za-z0-9._:/@-]{1,200}$/, 'must be 1-200 characters of A-Z a-z 0-9 . _ : / @ -');

export const replicaSchema = z.strictObject({
  /** Upstream base URL of this replica. */
  url: upstreamUrl,
  /** Name carried in session tokens. Default: the URL. Keep it when a replica moves, so its sessions still route. */
  id: replicaId.optional(),
  /** No new sessions go here; existing sessions and streams continue until `drainTimeout`. Default false. */
  draining: z.boolean().default(false),
});

export const healthCheckSchema = z.strictObject({
  /** Time between active checks of each replica. 0 turns active checks off. Default 10s. */
  interval: duration.default(10_000),
  /** A check that takes longer fails. Default 2s. */
  timeout: duration.default(2_000),
  /**
   * Unset: a TCP connect is the check (like HAProxy's plain `check`). Set: GET this path on the replica's origin; any
   * status below 500 passes.
   */
  path: z
    .string()
    .regex(/^\/[^\s#]*$/, 'must be an absolute path')
    .optional(),
  /** Consecutive failed checks that mark a replica down. Default 2. */
  unhealthyThreshold: z.number().int().positive().default(2),
  /** Consecutive passed checks that bring it back. Default 1. */
  healthyThreshold: z.number().int().positive().default(1),
});

export const ejectionSchema = z.strictObject({
  /**
   * Consecutive connect failures and timeouts that eject a replica (never the last one that takes
   * new work). 0 turns passive ejection off. Default 5.
   */
  consecutiveFailures: z.number().int().min(0).default(5),
  /**
   * Count 5xx answers as failures too. Off by default: one client's request that makes the upstream fail must not take
   * the replica out for everyone. Default false.
   */
  on5xx: z.boolean().default(false),
  /** How long an ejected replica gets no traffic. Default 30s. */
  duration: duration.default(30_000),
});

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

/** A stdio MCP server Sluice runs itself, one process per client session (a broker route). */
export const stdioSchema = z.strictObject({
  /** The program, found on PATH unless a path. Run as written: no shell, so no quoting, globs or pipes. */
  command: z.string().min(1),
  /** Its arguments, each passed as one argv entry. Default []. */
  args: z.array(z.string()).default([]),
  /** Environment for the child. It gets only these plus PATH, HOME and LANG, unless inheritEnv. Default {}. */
  env: z.record(envName, z.string()).default({}),
  /** Give the child Sluice's whole environment (then `env` on top). Default false: secrets stay out. */
  inheritEnv: z.boolean().default(false),
  /** Working directory of the child. Default: Sluice's. */
  cwd: z.string().min(1).optional(),
  /** Children running at once on this route; over it a new session gets 503 with Retry-After. Default 50. */
  maxProcesses: z.number().int().positive().default(50),
  /**
   * Processes one caller (an authenticated principal, or a credential on a route that checks none)
   * may hold of maxProcesses, so one client cannot take every slot. Anonymous callers are each new
   * at every request and bounded by maxProcesses alone. Default: half of maxProcesses, rounded up.
   */
  maxProcessesPerCaller: z.number().int().positive().optional(),
  /** A session with no request and no open stream for this long ends (its child is stopped). Default 10m. */
  idleTimeout: duration.default(600_000),
  /**
   * How long a client's POST waits for a child that does not read its stdin (over 1 MiB unread)
   * before it is answered 503 SLUICE_ERR_UPSTREAM_BUSY. Default 10s.
   */
  stdinWait: duration.default(10_000),
  /** Between SIGTERM to the child's process group and SIGKILL. Default 5s. */
  killGrace: duration.default(5_000),
  /** stdout and stderr lines a child may write per second before it counts as flooding and is stopped. Default 2000. */
  maxLinesPerSecond: z.number().int().positive().default(2000),
});
export type StdioConfig = z.output<typeof stdioSchema>;

/**
 * `upstream:` is a URL, a list of URLs and {url, id, draining} objects, or {stdio: {...}}. Parsed
 * by hand so a bad entry gets its own message ("scheme must be http or https") at its own path,
 * not "Invalid input".
 */
const upstreamList = z.unknown().transform((v, ctx) => {
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && 'stdio' in v) {
    const extra = Object.keys(v).filter((k) => k !== 'stdio');
    if (extra.length > 0)
      ctx.addIssue({ code: 'custom', path: [extra[0] as string], message: 'a stdio upstream has only `stdio`' });
    const r = stdioSchema.safeParse((v as { stdio: unknown }).stdio);
    if (!r.success) {
      for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: ['stdio', ...issue.path] } as never);
      return z.NEVER;
    }
    return { replicas: [], stdio: r.data };
  }
  const single = !Array.isArray(v);
  const entries: unknown[] = single ? [v] : (v as unknown[]);
  if (entries.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'at least one upstream is needed' });
    return z.NEVER;
  }
  const out: { url: string; id: string | undefined; draining: boolean }[] = [];
  entries.forEach((e, i) => {
    const r = typeof e === 'string' ? upstreamUrl.safeParse(e) : replicaSchema.safeParse(e);
    if (!r.success) {
      for (const issue of r.error.issues)
        ctx.addIssue({ ...issue, path: [...(single ? [] : [i]), ...issue.path] } as never);
      return;
    }
    out.push(
      typeof r.data === 'string'
        ? { url: r.data, id: undefined, draining: false }
        : { url: r.data.url, id: r.data.id, draining: r.data.draining },
    );
  });
  return { replicas: out, stdio: undefined };
});

const corsOrigin = z
  .string()
  .refine(
    (v) => v === '*' || /^https?:\/\/[^\s/?#]+$/.test(v),
    'must be "*" or an origin such as https://app.example.com (scheme://host[:port], no path)',
  );

const corsSchema = z.strictObject({
  /**
   * Origins whose browser scripts may read answers ("*" for any). Default [] (CORS off: OPTIONS goes to the upstream).
   */
  allowOrigins: z.array(corsOrigin).default([]),
  /**
   * Request headers allowed beyond the MCP ones (Authorization, Content-Type, Accept, Mcp-Session-Id,
   * MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name, requested Mcp-Param-*). Default [].
   */
  allowHeaders: z.array(z.string().regex(/^[A-Za-z0-9-]+$/, 'must be a header name')).default([]),
  /** How long browsers may cache a preflight. Default 24h. */
  maxAge: duration.default(86_400_000),
});

const payloadLoggingSchema = z.strictObject({
  /** Log each JSON-RPC message (request, response, SSE event) of this route, redacted. Default false. */
  enabled: z.boolean().default(false),
  /**
   * Field names replaced by [REDACTED] (case-insensitive, - and _ ignored), beyond the built-in
   * credential/token/cookie/session names. Default [].
   */
  redactFields: z.array(z.string().min(1)).default([]),
  /** JSON paths replaced by [REDACTED]: params.arguments.ssn, result.content[*].text, **.card_number. Default []. */
  redactPaths: z.array(z.string().min(1)).default([]),
  /** Field names whose values become a keyed hash ([HASH:…]) so equal values correlate. Default []. */
  hashFields: z.array(z.string().min(1)).default([]),
  /** JSON paths whose values become a keyed hash. Default []. */
  hashPaths: z.array(z.string().min(1)).default([]),
  /**
   * Replace bearer/basic credentials, JWTs, private keys, URL passwords and API-key shapes in strings. Default true.
   */
  detectors: z.boolean().default(true),
  /** Longest string kept; longer ones are cut and their length noted. Default 256. */
  maxString: z.number().int().positive().default(256),
  /** Most array items kept; the count is noted. Default 20. */
  maxArray: z.number().int().positive().default(20),
});

const upstreamTlsSchema = z
  .strictObject({
    /** PEM file of the CAs that sign the upstreams' certificates (instead of the system ones). */
    ca: z.string().min(1).optional(),
    /** Name to verify the certificate against and send as SNI, when it differs from the URL's host. */
    servername: z.string().min(1).optional(),
    /** Client certificate and key (PEM files) for upstreams that demand mTLS. */
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** Verify the upstream's certificate. false must be written out, and logs a warning at start. Default true. */
    verify: z.boolean().default(true),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), 'cert and key go together');

const httpUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'https:' || u.protocol === 'http:') && !u.hash && !u.username && !u.password;
  } catch {
    return false;
  }
}, 'must be an http(s) URL without credentials or fragment');

const secretSource = {
  /** The value itself (prefer `…Env` so secrets stay out of config files). */
  value: z.string().min(1).optional(),
  /** Name of the environment variable holding the value. */
  valueEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
    .optional(),
};

const clientCredentialsSchema = z
  .strictObject({
    /** The authorization server's token endpoint. */
    tokenUrl: httpUrl,
    clientId: z.string().min(1),
    /** The client secret, or `clientSecretEnv` naming the variable that holds it. */
    clientSecret: z.string().min(1).optional(),
    clientSecretEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    /** Space-separated scopes to ask for. */
    scope: z.string().min(1).optional(),
    /** RFC 8707 resource indicator (the upstream's URL) sent with the token request. */
    resource: httpUrl.optional(),
    /** How the secret is sent: HTTP Basic (client_secret_basic) or in the form (client_secret_post). Default basic. */
    method: z.enum(['basic', 'post']).default('basic'),
  })
  .refine(
    (c) => (c.clientSecret === undefined) !== (c.clientSecretEnv === undefined),
    'give exactly one of clientSecret and clientSecretEnv',
  );

const upstreamCredentialSchema = z
  .strictObject({
    /** Header that carries the credential upstream. Default authorization. */
    header: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, 'must be a header name')
      .transform((h) => h.toLowerCase())
      .default('authorization'),
    ...secretSource,
    /** Obtain (and refresh) a token with the OAuth client-credentials grant; sent as "Bearer <token>". */
    clientCredentials: clientCredentialsSchema.optional(),
  })
  .refine(
    (c) => [c.value, c.valueEnv, c.clientCredentials].filter((v) => v !== undefined).length === 1,
    'give exactly one of value, valueEnv and clientCredentials',
  );

const apiKeySchema = z.strictObject({
  /** Who the key belongs to: the principal's name in logs, policy rules and rate limits. */
  name: z.string().regex(/^[A-Za-z0-9._@:-]{1,100}$/, 'must be 1-100 of A-Z a-z 0-9 . _ @ : -'),
  /** SHA-256 of the key, hex (sluice auth hash-key). The key itself is never in the config. */
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (sluice auth hash-key KEY)')
    .transform((h) => h.toLowerCase()),
  /** Scopes the key grants (checked like a token's). Default []. */
  scopes: z.array(z.string().min(1)).default([]),
});

const authSchema = z.strictObject({
  /**
   * transparent (default): Authorization and WWW-Authenticate pass unchanged, the upstream's
   * protected-resource metadata is served at the public URL with its resource rewritten.
   * resource-server: Sluice checks every request's bearer token (JWT or API key) itself and
   * never forwards it; the upstream gets `upstreamCredential`.
   */
  mode: z.enum(['transparent', 'resource-server']).default('transparent'),
  /** The route's public canonical URL (https://mcp.example.com/mcp): the audience tokens must carry and the metadata's resource. Transparent default: from the request's scheme and Host. */
  resource: httpUrl.optional(),
  /** Issuer (iss) of accepted JWTs; its metadata names the JWKS. */
  issuer: httpUrl.optional(),
  /** JWKS URL; default: jwks_uri from the issuer's RFC 8414 / OpenID metadata. */
  jwksUri: httpUrl.optional(),
  /** Accepted audience; default: `resource`. */
  audience: z.string().min(1).optional(),
  /** Accepted signature algorithms. Default RS256, PS256, ES256, EdDSA. */
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
    .min(1)
    .default(['RS256', 'PS256', 'ES256', 'EdDSA']),
  /** Leeway for exp/nbf/iat. Default 30s. */
  clockTolerance: duration.default(30_000),
  /** How long fetched keys are kept (an unknown kid refetches at most every 30s). Default 10m. */
  jwksCacheTtl: duration.default(600_000),
  /** Scopes every request needs; missing ones get 403 insufficient_scope. Default []. */
  scopes: z.array(z.string().min(1)).default([]),
  /** scopes_supported in the metadata. Default: `scopes`. */
  scopesSupported: z.array(z.string().min(1)).optional(),
  /** API keys accepted as bearer tokens, stored as SHA-256 hashes. Default []. */
  apiKeys: z.array(apiKeySchema).default([]),
  /**
   * Address policy for fetching issuer metadata, JWKS and client-credentials tokens (metadata addresses always
   * refused).
   */
  egress: egressSchema.default(egressSchema.parse({})),
  /** The route's own credential for its upstream (resource-server mode); the client's token never goes upstream. */
  upstreamCredential: upstreamCredentialSchema.optional(),
});

const glob = z.string().min(1).max(200);

const policyRuleSchema = z.strictObject({
  effect: z.enum(['allow', 'deny']),
  /** JSON-RPC methods (globs: tools/call, resources/*). Default: any. */
  methods: z.array(glob).optional(),
  /** Tool / prompt names or resource URIs (globs). Default: any. */
  names: z.array(glob).optional(),
  /** Principals (globs over the JWT sub or API-key name). Default: anyone. */
  principals: z.array(glob).optional(),
  /** Scopes the caller must all hold. Default: none. */
  scopes: z.array(z.string().min(1)).optional(),
  /** Claims the caller's token must carry: a value, or one of a list (array claims match any element). */
  claims: z
    .record(
      z.string(),
      z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()]))]),
    )
    .optional(),
});

const policySchema = z.strictObject({
  /** What happens to a request no rule matches. Default allow. */
  default: z.enum(['allow', 'deny']).default('allow'),
  /**
   * First matching rule wins. initialize, ping, notifications and responses always pass; list results are filtered.
   * Default [].
   */
  rules: z.array(policyRuleSchema).default([]),
});

const rateLimitSchema = z
  .strictObject({
    /**
     * One bucket per principal (client address when anonymous), one for the whole route, or one per principal and tool.
     */
    by: z.enum(['principal', 'route', 'tool']),
    /** Token bucket: `requests` per `per`, bursts up to `burst`. */
    requests: z.number().int().positive().optional(),
    per: duration.default(1_000),
    /** Bucket size. Default: `requests`. */
    burst: z.number().int().positive().optional(),
    /** Or a cap on requests in flight at once (this process only). */
    concurrent: z.number().int().positive().optional(),
    /** Count only these JSON-RPC methods (globs). Default: every request (by tool: tools/call). */
    methods: z.array(glob).optional(),
    /** Count only these tool / prompt / resource names (globs). Default: any. */
    names: z.array(glob).optional(),
  })
  .refine(
    (r) => (r.requests === undefined) !== (r.concurrent === undefined),
    'give exactly one of requests and concurrent',
  );

/** A federated server's prefix: a URI scheme's characters (namespaced URIs are `<prefix>+<uri>`), no `+` or `_`. */
const serverPrefix = z
  .string()
  .regex(/^([A-Za-z][A-Za-z0-9.-]{0,31})?$/, 'must be empty, or a letter then up to 31 of A-Z a-z 0-9 . -');

/** One server of a federated route (`servers:`): an upstream with its own per-upstream settings. */
const serverSchema = z.preprocess(
  routeInput,
  z
    .strictObject({
      /** A URL, a list of replicas, or {stdio: {...}} (one process per federated session), as a route's. */
      upstream: upstreamList,
      /**
       * What its tool and prompt names get before the separator (`github__create_issue`) and its
       * resource URIs before a `+` (`github+repo://x`). Default: the server's name; '' keeps its names as they are.
       */
      prefix: serverPrefix.optional(),
      /** How its requests pick a replica. Default round-robin. */
      balance: z.enum(['round-robin', 'least-outstanding']).default('round-robin'),
      healthCheck: healthCheckSchema.default(healthCheckSchema.parse({})),
      ejection: ejectionSchema.default(ejectionSchema.parse({})),
      /** Addresses its connections may reach. Default: the route's `egress`. */
      egress: egressSchema.optional(),
      /** TLS to its https replicas. Default: the route's `tls`. */
      tls: upstreamTlsSchema.optional(),
      /** Its own credential (in place of the client's token or the route's auth.upstreamCredential). */
      upstreamCredential: upstreamCredentialSchema.optional(),
    })
    .transform((s, ctx) => {
      if (!Array.isArray(s.upstream?.replicas)) return z.NEVER;
      const upstream = s.upstream.replicas.map((u) => ({ url: u.url, id: u.id ?? u.url, draining: u.draining }));
      if (new Set(upstream.map((u) => u.id)).size !== upstream.length)
        ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'duplicate replica (give each an id)' });
      return { ...s, upstream, stdio: s.upstream.stdio };
    }),
);
export type ServerConfig = z.output<typeof serverSchema>;

const serverName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9.-]{0,31}$/, 'must be a letter then up to 31 of A-Z a-z 0-9 . -');

/**
 * A route as this schema outputs it may be fed back in (a reload, a test editing a loaded config):
 * the output's `stdio` (its upstream's, with `upstream: []`) is read back as `upstream: {stdio}`,
 * a relay route's `stdio: undefined` is dropped, and a federated route's empty `upstream` too.
 */
function routeInput(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const o = v as Record<string, unknown>;
  if (o['servers'] !== undefined && Array.isArray(o['upstream']) && o['upstream'].length === 0) {
    const { upstream: _none, stdio: _noStdio, ...federated } = o;
    return federated;
  }
  if (!('stdio' in v)) return v;
  const { stdio, ...rest } = v as Record<string, unknown>;
  if (stdio === undefined) return rest;
  const upstream = rest['upstream'];
  return Array.isArray(upstream) && upstream.length === 0 ? { ...rest, upstream: { stdio } } : v;
}

/** A route has `upstream` or `servers`; federated servers' prefixes never let one name read as another's. */
function federationChecks(
  r: { upstream?: unknown; servers?: Record<string, { prefix?: string | undefined }> | undefined; separator?: string },
  ctx: z.RefinementCtx,
): void {
  if (!r.servers) {
    if (r.upstream === undefined)
      ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'give `upstream` (or `servers`)' });
    if (r.separator !== undefined)
      ctx.addIssue({ code: 'custom', path: ['separator'], message: '`separator` is for a route with `servers`' });
    return;
  }
  if (r.upstream !== undefined)
    ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'give `upstream` or `servers`, not both' });
  const names = Object.keys(r.servers);
  if (names.length === 0) ctx.addIssue({ code: 'custom', path: ['servers'], message: 'at least one server is needed' });
  const sep = r.separator ?? '__';
  const owner = new Map<string, string>();
  for (const name of names) {
    const prefix = r.servers[name]?.prefix ?? name;
    if (prefix.includes(sep))
      ctx.addIssue({
        code: 'custom',
        path: ['servers', name, 'prefix'],
        message: `prefix "${prefix}" contains the separator "${sep}" (its names would read as another server's)`,
      });
    const other = owner.get(prefix.toLowerCase());
    if (other !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['servers', name, 'prefix'],
        message:
          prefix === ''
            ? `servers "${other}" and "${name}" both keep their names unprefixed: their names could collide`
            : `servers "${other}" and "${name}" have the same prefix "${prefix}": their names would collide`,
      });
    owner.set(prefix.toLowerCase(), name);
  }
  // `a` and `a-` with separator `--`: "a---x" starts with both "a--" and "a---", so a name of one
  // would be routed to the other. Refused whenever one server's prefix+separator begins another's.
  const heads = names
    .map((name) => ({ name, head: `${r.servers?.[name]?.prefix ?? name}${sep}`.toLowerCase() }))
    .filter((h) => h.head !== sep.toLowerCase());
  for (const a of heads)
    for (const b of heads)
      if (a !== b && a.head !== b.head && b.head.startsWith(a.head))
        ctx.addIssue({
          code: 'custom',
          path: ['servers', b.name, 'prefix'],
          message: `server "${b.name}"'s names begin with "${b.head}", which begins with server "${a.name}"'s "${a.head}": a name of one would be read as the other's (choose prefixes where neither plus the separator begins the other)`,
        });
}

export const routeSchema = z.preprocess(
  routeInput,
  z
    .strictObject({
      /** Public path prefix, e.g. /mcp. A request matches it exactly or below it (/mcp/...). Longest prefix wins. */
      path: publicPath,
      /**
       * Upstream base URL, or a list of replicas (URLs or {url, id, draining}); the part of the
       * request path below `path` is appended. New sessions and stateless requests are balanced
       * over the healthy replicas; a session stays on the replica that minted it. Or {stdio: {...}}:
       * a stdio server Sluice runs itself (a broker route, one process per session).
       */
      upstream: upstreamList.optional(),
      /**
       * Federation: several MCP servers behind this one route, by name (instead of `upstream`). The
       * client sees one server; names, URIs and ids are namespaced per server. Default: none.
       */
      servers: z.record(serverName, serverSchema).optional(),
      /** Between a federated server's prefix and a tool or prompt name. Default `__`. */
      separator: z
        .string()
        .regex(/^[A-Za-z0-9_.-]{1,4}$/, 'must be 1-4 of A-Z a-z 0-9 _ . -')
        .optional(),
      /** How new sessions and stateless requests pick a replica. Default round-robin. */
      balance: z.enum(['round-robin', 'least-outstanding']).default('round-robin'),
      healthCheck: healthCheckSchema.default(healthCheckSchema.parse({})),
      ejection: ejectionSchema.default(ejectionSchema.parse({})),
      /** How long sessions and streams on a draining replica may go on. Then they end (404 / closed). Default 10m. */
      drainTimeout: duration.default(600_000),
      /** Send the client's Host upstream instead of the upstream's own. Default false (like nginx's $proxy_host). */
      preserveHost: z.boolean().default(false),
      /** Which addresses the upstream connections of this route may reach, checked at every connect. */
      egress: egressSchema.default(egressSchema.parse({})),
      /** CORS for browser MCP clients; when on, Sluice answers preflights and owns the Access-Control-* headers. */
      cors: corsSchema.default(corsSchema.parse({})),
      /** Payload logging with redaction; off by default. */
      logPayloads: payloadLoggingSchema.default(payloadLoggingSchema.parse({})),
      /** TLS to https upstreams: verified against the system CAs by default. */
      tls: upstreamTlsSchema.optional(),
      /** Who may call: transparent (default) or Sluice as the OAuth resource server. */
      auth: authSchema.default(authSchema.parse({})),
      /** Which methods and tools callers may use. Default: everything. */
      policy: policySchema.default(policySchema.parse({})),
      /** Token buckets and concurrency caps; over the limit: 429 with Retry-After. Default []. */
      rateLimits: z.array(rateLimitSchema).default([]),
      /**
       * Protocol bridging: `auto` serves each client in its own era whatever the upstream speaks
       * (a 2026-07-28 client to a 2025 server and the other way round; Sluice finds the upstream's
       * era once per replica); `off` relays only. Default `auto` on a stdio route, `off` on an
       * HTTP route (a relay route stays a byte-exact relay unless asked).
       */
      bridge: z.enum(['auto', 'off']).optional(),
    })
    .superRefine((r, ctx) => {
      const a = r.auth;
      if (a.mode !== 'resource-server') {
        if (a.issuer || a.apiKeys.length > 0 || a.upstreamCredential)
          ctx.addIssue({
            code: 'custom',
            path: ['auth', 'mode'],
            message: 'issuer, apiKeys and upstreamCredential need mode: resource-server',
          });
        return;
      }
      if (!a.resource)
        ctx.addIssue({
          code: 'custom',
          path: ['auth', 'resource'],
          message: 'resource-server mode needs the public URL of this route (the token audience)',
        });
      if (!a.issuer && a.apiKeys.length === 0)
        ctx.addIssue({
          code: 'custom',
          path: ['auth'],
          message: 'resource-server mode needs an issuer, apiKeys, or both',
        });
    })
    .superRefine((r, ctx) => federationChecks(r, ctx))
    .transform((r, ctx) => {
      if (r.servers) return { ...r, upstream: [], stdio: undefined, separator: r.separator ?? '__' };
      // A bad upstream has been reported already: nothing of it to check here.
      if (!Array.isArray(r.upstream?.replicas)) return z.NEVER;
      const stdio = r.upstream.stdio;
      const upstream = r.upstream.replicas.map((u) => ({ url: u.url, id: u.id ?? u.url, draining: u.draining }));
      const seen = new Set<string>();
      upstream.forEach((u, i) => {
        if (seen.has(u.id))
          ctx.addIssue({
            code: 'custom',
            path: ['upstream', i],
            message: `duplicate replica "${u.id}" (give each an id)`,
          });
        seen.add(u.id);
        if (u.id.length > 200)
          ctx.addIssue({
            code: 'custom',
            path: ['upstream', i],
            message: 'URL longer than 200 characters: give the replica a short id',
          });
      });
      return { ...r, upstream, stdio };
    }),
);

export const timeoutsSchema = z.strictObject({
  /**
   * From a connection's first byte to the end of the request head (nginx's client_header_timeout). Exceeded: 408,
   * connection closed. Default 15s.
   */
  requestHeaders: duration.default(15_000),
  /**
   * From the end of the request head to the last byte of its body (a total, so a trickle cannot stretch it). Exceeded:
   * 408, connection closed. Default 60s.
   */
  requestBody: duration.default(60_000),
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
  /**
   * Deepest nesting of arrays and objects in a JSON-RPC body, checked by a byte scan before parsing. Deeper: 400.
   * Default 64.
   */
  jsonDepth: z.number().int().positive().default(64),
  /** Most messages in a JSON-RPC batch (only protocol 2025-03-26 allows batches). Default 64. */
  batch: z.number().int().positive().default(64),
  /**
   * Ceiling on bytes an SSE client may leave unread in Sluice (the upstream is paused long before, whenever the
   * client's socket is full). Past it the stream is closed. Default 4MiB.
   */
  sseClientBuffer: size.default(4 * 1024 * 1024),
  /**
   * How long an SSE client may stay behind (its socket full, not draining) before its stream is closed. 0: never.
   * Default 30s.
   */
  sseClientStall: duration.default(30_000),
  /**
   * Most exchanges in flight upstream at once (SSE streams included); more are answered 503 at
   * once with Retry-After, never queued. An exchange counts once its body is read: clients still
   * uploading cannot starve those whose requests are ready. 0: no cap. Default 4096.
   */
  concurrency: z.number().int().min(0).default(4096),
  /**
   * Most open client connections per listener (idle keep-alive and streams included); more are closed at accept. 0: no
   * cap. Default 16384.
   */
  connections: z.number().int().min(0).default(16_384),
  /**
   * Bytes all request bodies may hold in memory together, from the first byte read until their exchange ends; a body
   * that would pass it: 503 with Retry-After. Default 256MiB.
   */
  bodyMemory: size.default(256 * 1024 * 1024),
});

export const loggingSchema = z.strictObject({
  /** pino level for the process log. Default info. */
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON line per exchange. Default true. */
  access: z.boolean().default(true),
  /**
   * Share of exchanges whose access line and payload records are written (decided per exchange).
   * Security events (refusals by Origin, limits, header-body mismatch, address policy; auth
   * failures) are always written. Default 1.
   */
  sample: z.number().gt(0).max(1).default(1),
  /**
   * Key of the payload log's hash mode (equal values hash alike only under one key). Empty: SLUICE_LOG_HASH_KEY, else
   * random per process.
   */
  hashKey: z.string().default(''),
});

const sessionKey = z
  .string()
  .refine(
    (k) => /^[A-Za-z0-9_-]+={0,2}$/.test(k) && Buffer.from(k, 'base64url').length === 32,
    'must be 32 random bytes, base64url (sluice sessions new-key)',
  );

export const sessionsSchema = z.strictObject({
  /**
   * Session-token keys, base64url 32-byte, newest first: the newest seals, all open. Empty: taken
   * from SLUICE_SESSION_KEYS, else one is generated at start (sessions then die with the process
   * and do not span Sluice replicas; a warning says so).
   */
  keys: z.array(sessionKey).default([]),
});

export const adminSchema = z.strictObject({
  /** The admin listener (registration API). Unset: no admin listener. Keep it off the public interface. */
  listen: listenerSchema.optional(),
  /** Bearer token for the admin API; empty: taken from SLUICE_ADMIN_TOKEN. At least 16 characters. */
  token: z.string().default(''),
});

const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be 1-63 of a-z 0-9 -, starting with a letter or digit');

export const registrationsSchema = z.strictObject({
  /** Let tenants register their own MCP servers through the admin API. Default false. */
  enabled: z.boolean().default(false),
  /** Public path prefix of registered routes: <prefix>/<tenant>/<name>. Default /u. */
  pathPrefix: publicPath.default('/u'),
  /** Where registrations persist (JSON, rewritten atomically on change). Default ./sluice-registrations.json. */
  file: z.string().min(1).default('sluice-registrations.json'),
  /** Most upstreams one tenant may register. Default 20. */
  maxPerTenant: z.number().int().positive().default(20),
  /** Registered upstreams always get the strict address policy; these only add https or allow-list entries. */
  egress: z
    .strictObject({
      requireHttps: z.boolean().default(false),
      allow: z.array(cidr).default([]),
      allowHosts: z.array(z.string().min(1)).default([]),
    })
    .default({ requireHttps: false, allow: [], allowHosts: [] }),
});

export { slug as registrationSlug };

export const tracingSchema = z.strictObject({
  /**
   * A span per exchange, exported over OTLP/HTTP as the OTEL_* variables say; traceparent sent upstream. Default false.
   */
  enabled: z.boolean().default(false),
  /** service.name of the spans (OTEL_SERVICE_NAME wins). Default sluice. */
  serviceName: z.string().min(1).default('sluice'),
});

export const shutdownSchema = z.strictObject({
  /** How long in-flight POSTs may run after SIGTERM. Default 30s. */
  drain: duration.default(30_000),
  /** `retry:` hint (ms) written to SSE streams closed by shutdown. Default 1000. */
  retryHint: duration.default(1_000),
});

export const rateLimitingSchema = z.strictObject({
  /** Redis URL (redis://host:6379/0) holding the buckets, so several Sluice processes share one limit. Unset: in memory. */
  redis: z
    .string()
    .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL')
    .optional(),
  /** Key prefix in Redis. Default sluice:rl: */
  keyPrefix: z.string().default('sluice:rl:'),
  /**
   * When Redis does not answer within `timeout`: let the request through (true) or answer 503 (false). Default true.
   */
  failOpen: z.boolean().default(true),
  /** Longest wait for Redis per request. Default 250ms. */
  timeout: duration.default(250),
});

/** Bounds of protocol bridging (routes with `bridge: auto`), per route. */
export const bridgingSchema = z.strictObject({
  /** Upstream sessions one caller (principal + declared client identity) may hold at once. Default 4. */
  sessionsPerCaller: z.number().int().min(1).max(64).default(4),
  /** Upstream sessions (2026→2025) or bridged client sessions (2025→2026) per route. Default 200; over it: 503. */
  maxSessions: z.number().int().min(1).max(100_000).default(200),
  /** A bridged session with nothing in flight is closed after this long. Default 5m. */
  sessionIdle: duration.default(300_000),
  /** Calls waiting for their 2026-07-28 caller's input (input_required), per route. Default 1000. */
  maxPending: z.number().int().min(1).max(100_000).default(1000),
  /** How long such a call waits for the caller's next round; then it is cancelled upstream. Default 2m. */
  inputTimeout: duration.default(120_000),
  /**
   * How long a call waiting for its caller's next round keeps its upstream session (on a stdio
   * route, its process) against other callers: after it, a new caller that finds every session in
   * use takes the session of the longest-waiting one, which is cancelled upstream (its
   * requestState then answers -32602). Abandoned rounds never lock others out. Default 10s.
   */
  inputHold: duration.default(10_000),
  /** How long finding an upstream's era may take. Default 10s. */
  discoverTimeout: duration.default(10_000),
});
export type BridgingConfig = z.output<typeof bridgingSchema>;

/** Federated routes (`servers:`): how long a merged list waits for its servers. */
export const federationSchema = z.strictObject({
  /**
   * A merged list (tools/list, …) answers after this long with the servers that answered; the
   * request to each other one is abandoned, logged and counted, and their entries come back with
   * a list_changed once a background request gets them. Default 5s.
   */
  listTimeout: duration.default(5_000),
  /** How long connecting to one server (its initialize, or a stdio server's start) may take. Default 10s. */
  connectTimeout: duration.default(10_000),
  /** A server that failed is tried again after this long at the earliest (then doubling, to 30s). Default 1s. */
  retryAfter: duration.default(1_000),
  /**
   * A server that let `listTimeout` pass is asked in the background (for up to `connectTimeout`)
   * and not waited for again until it answers; meanwhile its last first page stands in for it, for
   * at most this long and only while the server announces its list changes (a list_changed drops
   * it at once). 0: nothing stands in. Default 30s.
   */
  listCache: duration.default(30_000),
  /**
   * Notifications a second (progress aside) one server may send a session before the session's
   * link to it is cut as unhealthy, named in the log, and tried again later. Default 200.
   */
  notificationRate: z.number().int().min(1).default(200),
  /**
   * The largest list answer (tools/list, …) one server may give; a larger one is refused with an
   * error naming the server. Default 4MB.
   */
  maxListBytes: size.default(4 * 1024 * 1024),
});
export type FederationConfig = z.output<typeof federationSchema>;

/**
 * Several Sluice instances behind one balancer with no affinity (Kubernetes pods): each broker
 * session, parked round and federated cursor is held by one instance, and a request for it that
 * reaches another is handed to the holder over its peer listener.
 */
export const clusterSchema = z.strictObject({
  /** The peer listener. Keep it off the public interface (a NetworkPolicy opens it between Sluice pods only). */
  listen: listenerSchema,
  /** host:port other instances reach this one's peer listener at, e.g. `${POD_IP}:7070`. Default: listen's. */
  advertise: z
    .string()
    .regex(/^[A-Za-z0-9.:[\]-]+:\d{1,5}$/, 'must be host:port')
    .optional(),
});
export type ClusterConfig = z.output<typeof clusterSchema>;

export const configSchema = z
  .strictObject({
    /** Listeners. Default one on 127.0.0.1:8080. */
    listen: z
      .array(listenerSchema)
      .min(1)
      .default([{ host: '127.0.0.1', port: 8080, allowHosts: [], allowOrigins: [] }]),
    /**
     * Worker processes sharing the listeners (`serve --workers`): a number, or `auto` (one per
     * available core). Default 1: one process, as measured best on small hosts.
     */
    workers: z.union([z.number().int().min(1).max(256), z.literal('auto')]).default(1),
    /** Other Sluice instances to hand broker state to (see clusterSchema). Unset: this instance alone. */
    cluster: clusterSchema.optional(),
    /** Routes: public path prefix -> upstream. At least one. */
    routes: z.array(routeSchema).min(1, 'at least one route is needed'),
    timeouts: timeoutsSchema.default(timeoutsSchema.parse({})),
    limits: limitsSchema.default(limitsSchema.parse({})),
    /** Peers (IP or CIDR) whose X-Forwarded-* / Forwarded headers are trusted. Default none. */
    trustedProxies: z.array(cidr).default([]),
    logging: loggingSchema.default(loggingSchema.parse({})),
    sessions: sessionsSchema.default(sessionsSchema.parse({})),
    admin: adminSchema.default(adminSchema.parse({})),
    registrations: registrationsSchema.default(registrationsSchema.parse({})),
    shutdown: shutdownSchema.default(shutdownSchema.parse({})),
    tracing: tracingSchema.default(tracingSchema.parse({})),
    rateLimiting: rateLimitingSchema.default(rateLimitingSchema.parse({})),
    bridging: bridgingSchema.default(bridgingSchema.parse({})),
    federation: federationSchema.default(federationSchema.parse({})),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.routes.forEach((r, i) => {
      if (seen.has(r.path))
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'path'], message: `duplicate route path "${r.path}"` });
      seen.add(r.path);
    });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type AuthConfig = RouteConfig['auth'];
export type PolicyConfig = RouteConfig['policy'];
export type RateLimitConfig = RouteConfig['rateLimits'][number];
export type ReplicaConfig = RouteConfig['upstream'][number];
export type ListenerConfig = Config['listen'][number];
