// `sluice doctor <url>`: opens a session through whatever stands in front of the MCP server
// (and learns whether `sluice probe` answers behind it), then runs every check that applies and
// says why it skipped the others. A target that cannot be examined at all (unreachable, TLS
// failure, not MCP, needs credentials) is a DoctorFatal with a message for humans.
import { FIRST_STATELESS_VERSION, H } from '../core/mcp.ts';
import { affinityCheck, bodyLimitCheck } from './checks-replicas.ts';
import { headerChecks, mirroredHeaderCheck } from './checks-headers.ts';
import { corsChecks, describeNotification, statusChecks } from './checks-statuses.ts';
import { idleCheck, resumeChecks, sseChecks } from './checks-streams.ts';
import {
  NOT_PROBE,
  probeAnswer,
  probeInstanceOf,
  skipAll,
  type DoctorContext,
  type DoctorOptions,
  type ProbeInfo,
} from './context.ts';
import { describeReply, McpPeer, type RpcExchange, type Session } from './mcp-peer.ts';
import { CHECKS } from './check-ids.ts';
import { ordered, result, type CheckId, type CheckResult, type Report, type StreamTimeline } from './report.ts';
import { Wire, WireError } from './wire.ts';

export class DoctorFatal extends Error {}

const PROBE_ONLY: CheckId[] = [
  'protocol-version-forwarded',
  'authorization-forwarded',
  'accept-forwarded',
  'host-forwarded',
  'mcp-param-forwarded',
  'sse-unbuffered',
  'idle-survival',
  'resume',
  'last-event-id-forwarded',
  'body-limit',
];
const NEEDS_SESSION: CheckId[] = [...PROBE_ONLY, 'sse-compression', 'affinity', 'notification-202'];
const PROBE_TOOLS = ['probe_info', 'emit_events', 'stay_silent', 'receive', 'probe_requests'];

export async function runDoctor(target: string, opts: DoctorOptions): Promise<Report> {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new DoctorFatal(`"${target}" is not a URL (e.g. https://mcp.example.com/mcp)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new DoctorFatal(`"${target}": only http:// and https:// URLs`);
  let wire: Wire;
  try {
    wire = new Wire({ insecure: opts.insecure ?? false, ...(opts.caFile ? { caFile: opts.caFile } : {}) });
  } catch (err) {
    throw new DoctorFatal(`--ca ${opts.caFile}: ${(err as Error).message}`);
  }
  const started = performance.now();
  try {
    const { checks, instances, timelines } = await examine(url, wire, opts);
    return {
      target: url.href,
      probeInstances: [...instances].sort(),
      quick: opts.quick,
      durationMs: Math.round(performance.now() - started),
      checks: ordered(checks),
      ...(timelines?.length ? { timelines } : {}),
    };
  } catch (err) {
    if (err instanceof WireError) throw new DoctorFatal(`cannot reach ${url.href}: ${err.message}`);
    throw err;
  } finally {
    await wire.close();
  }
}

async function examine(
  url: URL,
  wire: Wire,
  opts: DoctorOptions,
): Promise<{ checks: CheckResult[]; instances: Set<string>; timelines?: StreamTimeline[] }> {
  const results: CheckResult[] = [];
  const userHeaders = opts.headers ?? {};
  // A quick run stays quick even when the path hangs: shorter bounds per request.
  const timeoutMs = opts.quick ? 8_000 : 15_000;
  let peer = new McpPeer(url, wire, userHeaders, timeoutMs);
  let opening = await peer.initialize();
  const redirected = (ex: RpcExchange) => ex.status >= 300 && ex.status < 400;
  if (redirected(opening.ex)) {
    const location = opening.ex.headers['location'];
    results.push(
      result(
        'no-redirect',
        'fail',
        `POST ${url.pathname} was answered ${opening.ex.status}${location ? ` → ${location}` : ' without a Location'}; the checks below ran against ${location ?? 'nothing'}`,
      ),
    );
    if (!location) throw new DoctorFatal(`${url.href} answers POST with ${opening.ex.status} and no Location`);
    const status = opening.ex.status;
    peer = new McpPeer(new URL(location, url), wire, userHeaders, timeoutMs);
    opening = await peer.initialize();
    if (redirected(opening.ex))
      throw new DoctorFatal(
        `${url.href} redirects POST twice (${location} → ${opening.ex.headers['location'] ?? '?'})`,
      );
    // Where it points is no MCP server either: the redirect is the fault to name, and nothing
    // else can be examined until it is gone.
    if (!opening.session && !(await answersStateless(peer, opening.ex))) {
      results[0] = result(
        'no-redirect',
        'fail',
        `POST ${url.pathname} was answered ${status} → ${location}, and ${location} does not answer like an MCP server (initialize: ${describeReply(opening.ex)}); clients post to ${url.pathname} and do not follow redirects of a POST`,
      );
      const rest = (Object.keys(CHECKS) as CheckId[]).filter((id) => id !== 'no-redirect');
      results.push(...skipAll(rest, `not examined: ${url.pathname} redirects (see no-redirect)`));
      return { checks: results, instances: new Set() };
    }
  } else results.push(result('no-redirect', 'pass', `POST ${url.pathname} was answered ${opening.ex.status} directly`));

  const ctx: DoctorContext = {
    peer,
    opts,
    noSession: '',
    rttMs: 0,
    opened: [],
    instances: new Set(),
    stateless: false,
    callVersion: '',
    timelines: [],
  };
  const instances = ctx.instances;
  try {
    if (!opening.session) {
      await statelessOrFatal(peer, opening.ex);
      ctx.noSession = 'a stateless 2026-07-28 server has no sessions';
      results.push(
        result(
          'session-id-roundtrip',
          'skip',
          `initialize was answered ${describeReply(opening.ex)} and a 2026-07-28 request was answered 200: a stateless server`,
        ),
      );
      const sessionOnly: CheckId[] = ['notification-202', 'affinity', 'resume', 'last-event-id-forwarded'];
      results.push(...skipAll(sessionOnly, ctx.noSession));
      results.push(
        ...skipAll(
          [...PROBE_ONLY, 'sse-compression' as const].filter((id) => !sessionOnly.includes(id)),
          `${NOT_PROBE}; the probe answers 2025-era sessions`,
        ),
      );
      results.push(...(await statusChecks(ctx, false, true)), ...(await corsChecks(ctx)));
      return { checks: results, instances, timelines: ctx.timelines };
    }
    const { session, list, notification, lost } = await establish(ctx, opening.session);
    const working = list.reply !== undefined && 'result' in list.reply;
    const tools = working
      ? ((list.reply!['result'] as { tools?: { name?: string }[] }).tools ?? []).map((t) => t.name)
      : [];
    const instance = probeInstanceOf(session.serverName);
    const isProbe = working && instance !== undefined && PROBE_TOOLS.every((t) => tools.includes(t));
    results.push(roundTrip(session, list, working, instance !== undefined));
    if (working) {
      ctx.session = session;
      if (isProbe) ctx.instance = instance;
    } else ctx.noSession = 'needs a working session (see session-id-roundtrip)';
    if (isProbe && instance) instances.add(instance);
    // Without a session that works, the notification's refusal says nothing new.
    const noticeAt =
      results.push(working ? describeNotification(notification) : result('notification-202', 'skip', ctx.noSession)) -
      1;
    // A notification that reached another replica (404) is affinity's failure, not its own.
    const onlyAffinity = (): void => {
      if (notification.status === 404)
        results[noticeAt] = result(
          'notification-202',
          'skip',
          `${AFFINITY_FIRST}; notifications/initialized was answered ${describeReply(notification)}`,
        );
    };

    if (!ctx.session && instance !== undefined && (await statelessProbe(ctx))) {
      // Sessions are broken, but the probe also answers stateless 2026-07-28 requests: what
      // needs no session is still checked through the same path.
      results.push(...skipAll(['resume', 'last-event-id-forwarded', 'affinity'], ctx.noSession));
      results.push(...(await probeChecks(ctx)));
      results.push(...(await statusChecks(ctx, true)), ...(await corsChecks(ctx)));
      return { checks: results, instances, timelines: ctx.timelines };
    }
    if (!ctx.session) {
      results.push(
        ...skipAll(
          NEEDS_SESSION.filter((id) => id !== 'notification-202'),
          ctx.noSession,
        ),
      );
      results.push(...(await statusChecks(ctx, false)), ...(await corsChecks(ctx)));
      return { checks: results, instances, timelines: ctx.timelines };
    }
    if (!isProbe) {
      results.push(...skipAll(PROBE_ONLY, NOT_PROBE), await compressionWithoutProbe(ctx));
      const affinity = await affinityCheck(ctx, false, lost);
      results.push(...(await statusChecks(ctx, false)), ...(await corsChecks(ctx)), affinity);
      if (affinity.status === 'fail') onlyAffinity();
      return { checks: results, instances, timelines: ctx.timelines };
    }
    const s = ctx.session;
    ctx.call = (name, args, o = {}) => peer.callTool(s, name, args, o);
    ctx.callVersion = s.protocolVersion;
    // Affinity first: when a session's requests reach another replica, every check that runs in
    // a session would fail for that one reason. Those that can run as stateless 2026-07-28 calls
    // to the probe do; the ones that need a session are skipped and say why.
    const affinity = await affinityCheck(ctx, true, lost);
    if (affinity.status === 'fail') {
      onlyAffinity();
      results.push(affinity, ...skipAll(['resume', 'last-event-id-forwarded'], AFFINITY_FIRST));
      ctx.noSession = AFFINITY_FIRST;
      if (await statelessProbe(ctx)) results.push(...(await probeChecks(ctx)));
      else
        results.push(
          ...skipAll(
            [...PROBE_ONLY, 'sse-compression' as const].filter(
              (id) => id !== 'resume' && id !== 'last-event-id-forwarded',
            ),
            AFFINITY_FIRST,
          ),
        );
      results.push(...(await statusChecks(ctx, true)), ...(await corsChecks(ctx)));
      return { checks: results, instances, timelines: ctx.timelines };
    }
    results.push(...(await probeChecks(ctx, lost, affinity)));
    return { checks: results, instances, timelines: ctx.timelines };
  } finally {
    await closeSessions(ctx);
  }
}

/**
 * The checks that need the probe. The silent streams run beside everything else; the rest runs
 * one at a time, so that timings (event delays) are not disturbed by the doctor's own uploads.
 * Without a session (`lost` undefined) resume and affinity are left out.
 */
async function probeChecks(ctx: DoctorContext, lost?: string[], affinity?: CheckResult): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const idle = idleCheck(ctx);
  out.push(...(await headerChecks(ctx)));
  const sse = await sseChecks(ctx);
  out.push(...sse);
  if (lost)
    out.push(
      ...(await resumeChecks(
        ctx,
        sse.some((r) => r.id === 'sse-unbuffered' && r.status === 'fail'),
      )),
    );
  out.push(await mirroredHeaderCheck(ctx));
  if (lost) {
    out.push(...(await statusChecks(ctx, true)));
    out.push(...(await corsChecks(ctx)));
    out.push(affinity ?? (await affinityCheck(ctx, true, lost)));
  }
  out.push(await bodyLimitCheck(ctx));
  out.push(await idle);
  return out;
}

/** Sets up stateless calls when the probe answers one. */
async function statelessProbe(ctx: DoctorContext): Promise<boolean> {
  const { peer } = ctx;
  const ex = await peer.callToolStateless('probe_info', {});
  const info = probeAnswer<ProbeInfo>(ex);
  if (!info) return false;
  ctx.instances.add(info.instance);
  ctx.call = (name, args, o = {}) => peer.callToolStateless(name, args, o);
  ctx.stateless = true;
  ctx.callVersion = FIRST_STATELESS_VERSION;
  ctx.noSession = `${ctx.noSession}; the other probe checks ran as stateless 2026-07-28 requests`;
  return true;
}

const AFFINITY_FIRST = 'needs a session whose requests stay on one replica (see affinity)';

const MAX_OPENINGS = 10;

/**
 * initialize → notifications/initialized → tools/list. A session whose first request is
 * answered 404 was lost to another replica: that is evidence for the affinity check, and the
 * doctor tries a new one (hash-on-session balancing keeps a session once its hash fits). Up to
 * ten: behind such balancing over two replicas each new session fits with odds 1/2, so four tries
 * still found none 1 time in 16; ten leave 1 in 1,024 (three replicas: 1 in 58).
 */
async function establish(
  ctx: DoctorContext,
  first: Session,
): Promise<{ session: Session; list: RpcExchange; notification: RpcExchange; lost: string[] }> {
  const { peer } = ctx;
  const lost: string[] = [];
  let session = first;
  for (let attempt = 1; ; attempt++) {
    ctx.opened.push(session);
    const notification = await peer.notifyInitialized(session);
    const t0 = performance.now();
    const list = await peer.request(session, 'tools/list');
    ctx.rttMs = Math.round(performance.now() - t0);
    const ok = list.reply !== undefined && 'result' in list.reply;
    if (ok || list.status !== 404 || !session.id || attempt >= MAX_OPENINGS)
      return { session, list, notification, lost };
    const creator = probeInstanceOf(session.serverName);
    lost.push(
      `the first request of a session${creator ? ` created on ${creator}` : ''} was answered ${describeReply(list)}`,
    );
    const next = await peer.initialize();
    if (!next.session) return { session, list, notification, lost };
    session = next.session;
  }
}

function roundTrip(s: Session, list: RpcExchange, working: boolean, isProbe: boolean): CheckResult {
  if (working && s.id)
    return result(
      'session-id-roundtrip',
      'pass',
      `initialize answered an Mcp-Session-Id; tools/list with it answered ${list.status}`,
    );
  if (working)
    return result(
      'session-id-roundtrip',
      'warn',
      'the server issued no Mcp-Session-Id: a stateless server, or the header is dropped in front (put `sluice probe` behind this path to tell)',
    );
  if (!s.id)
    return result(
      'session-id-roundtrip',
      'fail',
      `the initialize response carried no Mcp-Session-Id${isProbe ? ' (the probe always sends one: dropped or hidden in front)' : ''}; tools/list then answered ${describeReply(list)}`,
    );
  if (list.status === 404)
    return result(
      'session-id-roundtrip',
      'fail',
      `every new session was unknown on its next request (${describeReply(list)}): requests reach another replica (see affinity)`,
    );
  return result(
    'session-id-roundtrip',
    'fail',
    `initialize answered an Mcp-Session-Id, but tools/list with it answered ${describeReply(list)}: the header does not come back to the server`,
  );
}

/** Whether the target answers a 2026-07-28 `server/discover` (a stateless server); never for 401/403 or silence. */
async function answersStateless(peer: McpPeer, ex: RpcExchange): Promise<boolean> {
  if (ex.status === 0 || ex.status === 401 || ex.status === 403) return false;
  const meta = {
    'io.modelcontextprotocol/protocolVersion': FIRST_STATELESS_VERSION,
    'io.modelcontextprotocol/clientInfo': { name: 'sluice-doctor', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
  };
  const discover = await peer.post(
    { jsonrpc: '2.0', id: peer.id(), method: 'server/discover', params: { _meta: meta } },
    { headers: peer.headers({ [H.protocolVersion]: FIRST_STATELESS_VERSION, [H.method]: 'server/discover' }) },
  );
  return discover.status === 200 && discover.reply !== undefined && 'result' in discover.reply;
}

async function statelessOrFatal(peer: McpPeer, ex: RpcExchange): Promise<void> {
  if (ex.status === 0)
    throw new DoctorFatal(
      `${peer.url.href} accepted the connection but did not answer initialize within ${peer.timeoutMs / 1000} s`,
    );
  if (ex.status === 401 || ex.status === 403) {
    const challenge = ex.headers['www-authenticate'];
    throw new DoctorFatal(
      `${peer.url.href} needs credentials: initialize was answered ${describeReply(ex)}${challenge ? ` (WWW-Authenticate: ${challenge})` : ''}; pass --header "Authorization: Bearer …"`,
    );
  }
  if (await answersStateless(peer, ex)) return;
  throw new DoctorFatal(
    `${peer.url.href} does not answer like an MCP server: initialize was answered ${describeReply(ex)}`,
  );
}

/** Without the probe, the initialize answer is the only stream the doctor can ask for. */
async function compressionWithoutProbe(ctx: DoctorContext): Promise<CheckResult> {
  const { ex, session } = await ctx.peer.initialize({ 'accept-encoding': 'gzip, deflate, br' });
  if (session) ctx.opened.push(session);
  if (!(ex.headers['content-type'] ?? '').includes('text/event-stream'))
    return result(
      'sse-compression',
      'skip',
      `the server answers initialize with ${ex.headers['content-type'] ?? 'no content-type'}, not a stream; ${NOT_PROBE}`,
    );
  const enc = ex.headers['content-encoding'];
  return enc
    ? result(
        'sse-compression',
        'fail',
        `the initialize event stream came ${enc}-encoded (the client offered gzip, deflate, br)`,
      )
    : result(
        'sse-compression',
        'pass',
        'the initialize event stream was not compressed although the client offered gzip, deflate, br',
      );
}

/** DELETE what the run opened, so a production server is left as it was found. */
async function closeSessions(ctx: DoctorContext): Promise<void> {
  const { peer } = ctx;
  await Promise.all(
    ctx.opened
      .filter((s) => s.id)
      .map((s) =>
        peer
          .post(undefined, { method: 'DELETE', headers: peer.sessionHeaders(s), timeoutMs: 5000 })
          .catch(() => undefined),
      ),
  );
}
