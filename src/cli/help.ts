export const HELP = `sluice - an MCP gateway that carries every MCP wire shape correctly

Usage:
  sluice serve --upstream URL [--upstream URL ...] [--listen HOST:PORT] [--path /mcp] [--allow-origin O ...]
               [--allow-host H ...] [--admin HOST:PORT] [--log-payloads] [--bridge] [--workers N|auto]
  sluice serve --stdio [--listen HOST:PORT] [--path /mcp] [...] -- COMMAND [ARGS...]
  sluice serve --config sluice.yaml [--workers N|auto]
  sluice validate sluice.yaml
  sluice demo [--listen HOST:PORT]
  sluice sessions decode TOKEN [--keys K1,K2] [--principal P]
  sluice sessions new-key
  sluice auth new-key | sluice auth hash-key [KEY]
  sluice config nginx|caddy|haproxy|traefik --upstream URL [--upstream URL ...] [--listen HOST:PORT] [--allow-origin O]
  sluice probe [--listen HOST:PORT] [--instance NAME]
  sluice doctor URL [--quick] [--json | --markdown] [--html FILE [--platform P]] [--idle S[,S...]]
                [--header "Name: value"]... [--origin O] [--sessions N] [--insecure] [--ca FILE]
  sluice check-upstream URL [--resolve HOST=IP[,IP]]... [--trusted]
  sluice --help | --version

Commands:
  serve      Run the gateway. Quick form: one route from --path (default /mcp) to --upstream
             (repeat it for several replicas: new sessions are spread round robin, each session
             stays on the replica that minted it), listening on --listen (default
             127.0.0.1:8080); --allow-origin turns CORS on for browser clients from that origin
             ("*" for any; other cross-origin requests get 403); --allow-host adds a Host name the
             listener answers (a loopback listener answers only loopback names: the DNS-rebinding
             defence); --admin serves /healthz, /readyz and Prometheus /metrics on its own
             address; --log-payloads logs every JSON-RPC message, redacted by the default rules;
             --bridge serves clients of the other protocol era than the upstream's (a 2026-07-28
             client of a 2025 server, a 2025 client of a 2026-07-28-only one).
             --workers N|auto runs N worker processes behind the same listeners (auto: one per
             core); any worker serves any session (with --config too, where it overrides "workers").
             --stdio -- COMMAND ARGS: the route runs that stdio MCP server itself, one process per
             client session (Streamable HTTP at --path, HTTP+SSE at <path>/sse).
             Full form: --config FILE.
  validate   Check a config file; prints every bad field and why, exits 1 if any.
  sessions   decode: print what a session token holds (keys from --keys or SLUICE_SESSION_KEYS);
             new-key: print a fresh 32-byte key, base64url, for SLUICE_SESSION_KEYS.
  auth       new-key: print a random API key and its SHA-256; hash-key: the SHA-256 of KEY (read
             from stdin when left out) for routes[].auth.apiKeys[].sha256. Keys never go in the
             config file, only their hashes.
  config     Print a fronting config for your own proxy with every MCP rule applied (no
             buffering or compression of SSE, long timeouts, MCP headers forwarded and exposed,
             keep-alive upstream, affinity where the proxy can learn it from the response).
  probe      An MCP server to put behind any proxy chain: it records what reached it
             (GET /probe/requests) and has tools that emit timed events, stay silent and send
             large payloads, so the doctor can see through the chain.
  doctor     Check the real path to a public MCP URL (your proxies, load balancer, CDN): SSE
             unbuffered and uncompressed, silent streams surviving (--idle, default 60,100,130 s;
             --quick: 10 s and the whole run under 30 s), MCP headers both ways, CORS, status
             codes, session affinity, Last-Event-ID resume, body limits, OAuth discovery (401
             challenge and protected-resource metadata on the public URL). Put \`sluice probe\`
             behind the path for every check; against another MCP server the checks that need
             the probe are skipped and say so. Each failure names the cause and the fix for
             nginx, Caddy, HAProxy, Traefik, AWS ALB and Cloudflare. --html FILE also writes the
             report as one self-contained page with a timeline of the SSE events as sent and as
             received (--platform nginx|caddy|haproxy|traefik|aws-alb|cloudflare: only its fixes).
             Exit 0 all passed (warnings allowed), 1 a check failed, 3 the URL could not be examined.
  check-upstream
             Would Sluice connect to URL? Prints "allowed" or "refused: <rule>", exit 0 or 1.
             Judged with the strict policy of user-registered upstreams; --trusted uses that of
             routes in the config file. --resolve replaces DNS (no real lookup is made).
  demo       Start the bundled demo MCP server (official SDK) on a free loopback port and the
             gateway in front of it, and print how to connect.

Signals: SIGTERM/SIGINT drain gracefully (in-flight POSTs finish, SSE streams get a retry hint);
SIGHUP re-reads --config (routes, replicas, draining, timeouts, limits, keys) without dropping
connections. Several Sluice processes given the same SLUICE_SESSION_KEYS route each other's
sessions: no shared store, no sticky load balancer needed in front.
Config reference: docs/config.md
`;

/**
 * One command's help: its usage lines and its paragraph of HELP (undefined for an unknown
 * command). `sluice serve --help` answers this instead of refusing the option.
 */
export function commandHelp(command: string): string | undefined {
  const lines = HELP.split('\n');
  const usage: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.startsWith(`  sluice ${command} `) && line !== `  sluice ${command}`) continue;
    usage.push(line);
    // A usage line continues on lines indented past `  sluice `.
    while (/^ {9,}\S/.test(lines[i + 1] ?? '')) usage.push(lines[++i] as string);
  }
  const start = lines.findIndex((l, i) => i > lines.indexOf('Commands:') && new RegExp(`^  ${command}(\\s|$)`).test(l));
  if (usage.length === 0 || start === -1) return undefined;
  const about = [lines[start] as string];
  for (let i = start + 1; i < lines.length && /^ {3,}\S/.test(lines[i] as string); i++) about.push(lines[i] as string);
  return `Usage:\n${usage.join('\n')}\n\n${about.join('\n')}\n\nAll commands: sluice --help\n`;
}

/** Whether ARGS ask for help (`--help` or `-h` before any `--`: what follows `--` is a stdio server's own). */
export function asksHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
