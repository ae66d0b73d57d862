// For every check: the likely cause of a failure and the fix on each platform people put in
// front of MCP servers. The rules behind them are explained in docs/deployment.md; the nginx,
// Caddy and HAProxy lines match what `sluice config …` writes.
import type { CheckId } from './check-ids.ts';

export interface Fix {
  cause: string;
  nginx: string;
  caddy: string;
  haproxy: string;
  traefik: string;
  'aws-alb': string;
  cloudflare: string;
}

export const PLATFORMS = [
  { key: 'nginx', label: 'nginx' },
  { key: 'caddy', label: 'Caddy' },
  { key: 'haproxy', label: 'HAProxy' },
  { key: 'traefik', label: 'Traefik' },
  { key: 'aws-alb', label: 'AWS ALB' },
  { key: 'cloudflare', label: 'Cloudflare' },
] as const;

/** The fix for a request header that must reach the server unchanged. */
function requestHeaderFix(header: string, cause: string): Fix {
  return {
    cause,
    nginx: `remove any \`proxy_set_header ${header} ""\` or \`more_clear_input_headers\` for it; nginx forwards it by default`,
    caddy: `remove \`header_up -${header}\` from reverse_proxy`,
    haproxy: `remove \`http-request del-header ${header.toLowerCase()}\` (and any set-header that overwrites it)`,
    traefik: `remove the Headers middleware's customRequestHeaders entry that blanks ${header}`,
    'aws-alb': `ALB forwards it; with CloudFront in front, add ${header} to the origin request policy (or use AllViewer)`,
    cloudflare: `Cloudflare forwards it; remove the Transform Rule (request header modification) or Worker that drops ${header}`,
  };
}

const CORS_HEADERS =
  'Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name';
const EXPOSED = 'Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate';

const ERROR_PAGES = {
  nginx:
    'no `proxy_intercept_errors on` or `error_page` for the MCP location: upstream statuses and JSON bodies must pass as they are',
  caddy: 'no `handle_errors` or `handle_response` rewriting upstream errors for the MCP path',
  haproxy: 'no `http-response return`/`errorfile` rules replacing upstream 4xx answers on this backend',
  traefik: 'remove the Errors middleware (custom error pages) from the MCP router',
  'aws-alb':
    'ALB passes target answers; a fixed-response listener rule or AWS WAF custom response must not cover the MCP path',
  cloudflare:
    'exclude the MCP path from Custom Error Rules / custom error pages and from Workers that rewrite responses',
};

export const FIXES: Record<CheckId, Fix> = {
  'no-redirect': {
    cause:
      'POST to the published URL is redirected (trailing slash, http→https, host canonicalisation); MCP clients do not follow redirects for POST reliably. Publish the final URL.',
    nginx:
      '`location /mcp` (no trailing slash) so /mcp is not redirected to /mcp/; publish the https:// URL when port 80 redirects',
    caddy: 'publish the https:// URL (Caddy redirects HTTP to HTTPS); no `redir` on the MCP path',
    haproxy: 'no `http-request redirect` for the MCP path; publish the URL HAProxy serves directly',
    traefik: 'publish the https:// URL when a RedirectScheme middleware is on; no RedirectRegex on the MCP path',
    'aws-alb': 'publish the HTTPS listener URL (the HTTP listener redirect answers 301)',
    cloudflare:
      'publish the final https:// URL (Always Use HTTPS answers 301); exclude the MCP path from Redirect Rules',
  },
  'session-id-roundtrip': {
    cause:
      'Mcp-Session-Id is dropped or hidden on the way (on the initialize response or on later requests), so every request after initialize fails.',
    nginx: 'remove `proxy_hide_header Mcp-Session-Id` and `proxy_set_header Mcp-Session-Id ""`',
    caddy: 'remove `header_down -Mcp-Session-Id` and `header_up -Mcp-Session-Id` from reverse_proxy',
    haproxy: 'remove `http-response del-header mcp-session-id` and `http-request del-header mcp-session-id`',
    traefik:
      'remove Headers middleware entries that blank Mcp-Session-Id (customRequestHeaders / customResponseHeaders)',
    'aws-alb':
      'ALB forwards it; with CloudFront, add Mcp-Session-Id to the origin request policy and keep it in responses',
    cloudflare: 'remove Transform Rules (request or response header modification) and Workers that drop Mcp-Session-Id',
  },
  'notification-202': {
    cause:
      'A JSON-RPC notification must be answered 202 Accepted with no body; something in front (or the server) answers otherwise.',
    ...ERROR_PAGES,
  },
  'protocol-version-forwarded': requestHeaderFix(
    'MCP-Protocol-Version',
    'MCP-Protocol-Version does not reach the server, which then assumes 2025-03-26 (and 2026-07-28 requests are refused).',
  ),
  'authorization-forwarded': requestHeaderFix(
    'Authorization',
    'Authorization does not reach the server (or arrives changed), so authenticated MCP servers answer 401.',
  ),
  'accept-forwarded': requestHeaderFix(
    'Accept',
    'Accept arrives without application/json and text/event-stream; Streamable HTTP servers answer 406 Not Acceptable.',
  ),
  'host-forwarded': {
    cause:
      'The server sees another Host than the public one: servers that check Host (DNS-rebinding protection) refuse it, and URLs they build point to the wrong place.',
    nginx: '`proxy_set_header Host $http_host;` (nginx sends the upstream block name by default)',
    caddy: 'remove `header_up Host {upstream_hostport}` (Caddy passes the Host through by default)',
    haproxy: 'remove `http-request set-header Host` (HAProxy passes the Host through by default)',
    traefik: '`passHostHeader: true` on the service (the default)',
    'aws-alb': 'ALB passes the Host through; with CloudFront, forward the Host header in the origin request policy',
    cloudflare: 'remove the Origin Rule that overrides the Host header (or make the server accept it)',
  },
  'mcp-param-forwarded': requestHeaderFix(
    'Mcp-Method/Mcp-Name/Mcp-Param-*',
    'Mcp-Method, Mcp-Name or Mcp-Param-* headers of a 2026-07-28 request do not reach the server; the spec says intermediaries MUST forward them (servers answer 400 without them).',
  ),
  'sse-unbuffered': {
    cause:
      'Something in front holds SSE events back (response buffering), so progress and results arrive late or all at once at the end.',
    nginx:
      '`proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off;` in the MCP location (nginx defaults, HTTP/1.0 to the upstream with buffering on, hold the whole stream)',
    caddy: '`flush_interval -1` in reverse_proxy, and no `encode` or response-body handler on the MCP path',
    haproxy: '`option http-no-delay` in the backend; no `filter compression` or cache on text/event-stream',
    traefik:
      'remove the Buffering middleware from the MCP router (it holds whole responses); keep Compress off event streams',
    'aws-alb':
      'ALB streams; the buffering is behind it (a proxy on the targets) or in CloudFront in front: use a behavior with the CachingDisabled policy',
    cloudflare:
      'turn Response Buffering off for the path (Enterprise setting) and make sure no Worker reads the whole body; serve Content-Type: text/event-stream',
  },
  'sse-compression': {
    cause:
      'The SSE stream is compressed in front; compressors hold bytes until their buffer fills, and some clients and layers stall on compressed event streams.',
    nginx: '`gzip off;` in the MCP location (or take text/event-stream out of gzip_types; the same for brotli_types)',
    caddy: 'no `encode` directive in the site block that serves the MCP path',
    haproxy: 'take text/event-stream out of `compression type` (or remove `filter compression`) for this backend',
    traefik: 'take the Compress middleware off the MCP router, or add text/event-stream to its excludedContentTypes',
    'aws-alb': 'ALB does not compress; with CloudFront, turn off "Compress objects automatically" on the MCP behavior',
    cloudflare: 'add a Compression Rule for the MCP path with "Disable compression"',
  },
  'idle-survival': {
    cause:
      'A read or idle timeout in front is shorter than the silence of a long tool call or an idle stream, so the stream is cut. Heartbeats (SSE comments every ≤ 30 s, which Sluice sends) keep idle-timeout proxies open.',
    nginx: '`proxy_read_timeout 3600s; proxy_send_timeout 3600s;` (default 60 s)',
    caddy:
      'remove short `read_timeout`/`response_header_timeout` in `transport http` and short server `timeouts` in the global options (Caddy has none by default)',
    haproxy: '`timeout server 1h`, `timeout client 1h` and `timeout tunnel 1h`',
    traefik:
      'static config: `entryPoints.<name>.transport.respondingTimeouts` writeTimeout/idleTimeout 3600s and readTimeout 0 (v3 defaults readTimeout to 60 s)',
    'aws-alb':
      '`aws elbv2 modify-load-balancer-attributes --attributes Key=idle_timeout.timeout_seconds,Value=3600` (default 60 s)',
    cloudflare:
      'proxied requests idle for 100 s end in 524: send SSE comments (`:` lines) every ≤ 30 s from the server (Sluice in front does), or on Enterprise raise the proxy read timeout',
  },
  resume: {
    cause:
      'A stream resumed with Last-Event-ID does not continue: the header is dropped, the GET reaches another replica, or events are buffered.',
    nginx:
      'forward Last-Event-ID (no `proxy_set_header Last-Event-ID ""`), `proxy_buffering off`, and route the session to its replica (open-source nginx cannot: one upstream, or Sluice in front of the replicas)',
    caddy:
      'forward Last-Event-ID (no `header_up -Last-Event-ID`), `flush_interval -1`, one upstream or Sluice in front of the replicas',
    haproxy: 'forward Last-Event-ID and keep the stick table on Mcp-Session-Id (`sluice config haproxy`)',
    traefik: 'forward Last-Event-ID; one server, or Sluice in front of the replicas',
    'aws-alb': 'one target per session: a single target, or Sluice on the targets routing by session',
    cloudflare: 'forward Last-Event-ID (no Transform Rule dropping it); one origin, or Sluice behind Cloudflare',
  },
  'last-event-id-forwarded': requestHeaderFix(
    'Last-Event-ID',
    'Last-Event-ID does not reach the server, so a resumed stream starts over or fails.',
  ),
  affinity: {
    cause:
      'Requests of one session reach a replica that did not create it (404 Session not found): no affinity, or affinity hashed on Mcp-Session-Id, which the initialize request does not carry yet. Affinity must be learned from the initialize response.',
    nginx:
      'open-source nginx cannot learn it: use one upstream server, or put `sluice serve --upstream …` in front of the replicas (nginx Plus: `sticky learn create=$upstream_http_mcp_session_id lookup=$http_mcp_session_id zone=mcp:1m;`)',
    caddy:
      '`lb_policy header Mcp-Session-Id` hashes a header initialize lacks: use one upstream (`lb_policy first`) or Sluice in front of the replicas',
    haproxy:
      '`stick-table type string len 256 size 100k expire 1h`, `stick store-response res.hdr(mcp-session-id)`, `stick match req.hdr(mcp-session-id)` in the backend (`sluice config haproxy`)',
    traefik: 'sticky cookies do not reach non-browser MCP clients: one server, or Sluice in front of the replicas',
    'aws-alb': 'ALB stickiness is cookie-based (MCP clients ignore cookies): one target, or Sluice on the targets',
    cloudflare:
      'Load Balancing affinity is cookie or IP based: one origin, or Sluice behind Cloudflare routing by session',
  },
  'unknown-session-404': {
    cause:
      'An unknown or expired session is not answered 404, so clients do not start a new session (the MCP spec requires 404). If the server itself answers 400, it is the server.',
    ...ERROR_PAGES,
  },
  'method-405': {
    cause:
      "The server's 405 Method Not Allowed is replaced or the method is refused in front; clients use 405 to tell which transport a server speaks.",
    nginx: 'no `limit_except` or `error_page 405` in the MCP location',
    caddy: 'no `method` matcher answering other methods before reverse_proxy',
    haproxy: 'no `http-request deny` on methods for the MCP path; no errorfile for 405',
    traefik: 'no Errors middleware for 405 on the MCP router',
    'aws-alb': 'no listener rule or WAF rule refusing methods on the MCP path',
    cloudflare: 'no WAF rule blocking methods on the MCP path; exclude it from custom error pages',
  },
  'error-body-intact': {
    cause:
      'JSON-RPC error bodies from the server are replaced (error pages), so clients cannot tell a lost session from other failures or which protocol era the server speaks.',
    ...ERROR_PAGES,
  },
  'cors-preflight': {
    cause:
      'Browser-based MCP clients send a CORS preflight; it must allow POST, GET, DELETE and the MCP request headers. (Only browser clients need CORS.)',
    nginx: `answer OPTIONS with 204 and \`Access-Control-Allow-Headers "${CORS_HEADERS}, $http_access_control_request_headers"\` (\`sluice config nginx\`)`,
    caddy: `\`@preflight method OPTIONS\` → \`header Access-Control-Allow-Headers "${CORS_HEADERS}"\` and \`respond 204\` (\`sluice config caddy\`)`,
    haproxy:
      '`http-request return status 204 hdr Access-Control-Allow-Headers "…" if METH_OPTIONS` (`sluice config haproxy`)',
    traefik: `Headers middleware: accessControlAllowMethods [GET, POST, DELETE, OPTIONS], accessControlAllowHeaders [${CORS_HEADERS}], accessControlAllowOriginList`,
    'aws-alb':
      'ALB does not answer preflights: the server must, or CloudFront with a response headers policy that has a CORS configuration',
    cloudflare:
      'a Worker or the server answers OPTIONS; Transform Rules can add the Access-Control-Allow-* response headers',
  },
  'cors-expose-session-id': {
    cause:
      'Browsers hide response headers that are not exposed: without Access-Control-Expose-Headers a browser client never sees Mcp-Session-Id (every request after initialize fails) or WWW-Authenticate (no OAuth discovery).',
    nginx: `\`add_header Access-Control-Expose-Headers "${EXPOSED}" always;\``,
    caddy: `\`header Access-Control-Expose-Headers "${EXPOSED}"\``,
    haproxy: `\`http-response set-header Access-Control-Expose-Headers "${EXPOSED}"\``,
    traefik: `Headers middleware: accessControlExposeHeaders [${EXPOSED}]`,
    'aws-alb':
      'ALB cannot add response headers: the server must, or a CloudFront response headers policy (CORS, expose headers)',
    cloudflare: `a Response Header Transform Rule setting Access-Control-Expose-Headers: ${EXPOSED}`,
  },
  'oauth-discovery': {
    cause:
      'MCP clients find the authorization server through /.well-known/oauth-protected-resource<MCP path> (or the 401\'s resource_metadata) on the public origin, and refuse metadata whose "resource" is not the URL they were given. A front that routes only the MCP path answers 404 there; a server that does not know its public URL names an internal one.',
    nginx:
      '`location ^~ /.well-known/oauth-protected-resource { proxy_pass http://mcp_backend; proxy_set_header Host $http_host; }` (as `sluice config nginx` writes), and configure the server with its public URL as resource',
    caddy:
      'add `/.well-known/oauth-protected-resource /.well-known/oauth-protected-resource/*` to the path matcher of the reverse_proxy (as `sluice config caddy` writes)',
    haproxy:
      '`acl mcp_path path /.well-known/oauth-protected-resource` and `acl mcp_path path_beg /.well-known/oauth-protected-resource/` (one criterion per line) before `use_backend`',
    traefik:
      'extend the router rule: `|| Path(`/.well-known/oauth-protected-resource`) || PathPrefix(`/.well-known/oauth-protected-resource/`)`',
    'aws-alb': 'a listener rule forwarding path /.well-known/oauth-protected-resource* to the MCP target group',
    cloudflare:
      "route /.well-known/oauth-protected-resource* to the same origin (Origin Rules / the Worker's routes); do not cache a 401 or the metadata with the wrong host",
  },
  'body-limit': {
    cause: 'A request-body limit in front is below what MCP tool calls send (the MCP SDKs accept 4 MiB).',
    nginx: '`client_max_body_size 4m;` (default 1m)',
    caddy: 'raise or remove `request_body { max_size … }` on the MCP path',
    haproxy: 'remove `http-request deny if { req.body_size gt … }` rules below 4 MiB',
    traefik: 'Buffering middleware `maxRequestBodyBytes: 4194304` or more, or no Buffering middleware',
    'aws-alb':
      'ALB has no body limit for instance/IP targets (Lambda targets: 1 MB); AWS WAF size rules must allow 4 MiB on the MCP path',
    cloudflare: 'bodies up to 100 MB pass on every plan; a WAF rule on body size must allow 4 MiB on the MCP path',
  },
};
