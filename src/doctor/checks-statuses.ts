// Status codes and bodies that clients act on (404 for a lost session, 405, JSON-RPC error
// bodies), and CORS for browser-based clients. None of these needs the probe.
import { randomUUID } from 'node:crypto';
import { FIRST_STATELESS_VERSION, H } from '../core/mcp.ts';
import { oauthDiscoveryCheck } from './checks-oauth.ts';
import type { DoctorContext } from './context.ts';
import { describeReply, rpcError, type RpcExchange } from './mcp-peer.ts';
import { result, type CheckResult } from './report.ts';

const isJsonRpcError = (ex: RpcExchange): boolean => rpcError(ex) !== undefined;

export async function statusChecks(ctx: DoctorContext, isProbe: boolean, stateless = false): Promise<CheckResult[]> {
  const { peer } = ctx;
  const s = ctx.session;
  const out: CheckResult[] = [];
  const bodies: string[] = [];
  let bodiesOk = true;

  if (!s) out.push(result('unknown-session-404', 'skip', ctx.noSession));
  else if (!s.id) out.push(result('unknown-session-404', 'skip', 'the server issues no session ids'));
  else {
    const ex = await peer.post(
      { jsonrpc: '2.0', id: peer.id(), method: 'tools/list', params: {} },
      { headers: peer.sessionHeaders(s, { [H.sessionId]: `sluice-doctor-unknown-${randomUUID()}` }) },
    );
    out.push(
      ex.status === 404
        ? result('unknown-session-404', 'pass', `answered ${describeReply(ex)}`)
        : result(
            'unknown-session-404',
            'fail',
            `a made-up Mcp-Session-Id was answered ${describeReply(ex)}, not 404: clients will not start a new session`,
          ),
    );
    if (ex.status === 404) {
      bodies.push(`404 for an unknown session: ${isJsonRpcError(ex) ? 'JSON-RPC error' : describeReply(ex)}`);
      bodiesOk &&= isJsonRpcError(ex);
    }
  }

  // A method the endpoint does not serve: PUT within a session (SDK servers answer 405), or for
  // a stateless server the GET that 2026-07-28 clients use to tell eras apart.
  const probeMethod = stateless ? 'GET' : 'PUT';
  const wrong = stateless
    ? await peer.post(undefined, {
        method: 'GET',
        headers: peer.headers({ accept: 'text/event-stream', [H.protocolVersion]: FIRST_STATELESS_VERSION }),
      })
    : s
      ? await peer.post(undefined, { method: 'PUT', headers: peer.sessionHeaders(s) })
      : undefined;
  if (!wrong) out.push(result('method-405', 'skip', ctx.noSession));
  else if (wrong.status === 405)
    out.push(
      result(
        'method-405',
        'pass',
        `${probeMethod} answered 405${wrong.headers['allow'] ? ` (Allow: ${wrong.headers['allow']})` : ''}`,
      ),
    );
  else
    out.push(
      result(
        'method-405',
        isProbe ? 'fail' : 'warn',
        `${probeMethod} answered ${describeReply(wrong)}, not 405${isProbe ? ' (the probe answers 405)' : ''}`,
      ),
    );

  const malformed = await peer.post(undefined, {
    rawBody: '{"jsonrpc":"2.0","id":1,"method":',
    headers: s ? peer.sessionHeaders(s) : peer.headers(),
  });
  bodies.push(`malformed JSON: ${describeReply(malformed)}`);
  bodiesOk &&= malformed.status >= 400 && malformed.status < 500 && isJsonRpcError(malformed);
  if (s) {
    const unknownTool = await peer.callTool(s, `sluice_doctor_no_such_tool_${Date.now()}`, {});
    const answered = unknownTool.reply !== undefined;
    bodies.push(
      `unknown tool: ${answered ? `JSON-RPC ${'error' in unknownTool.reply! ? 'error' : 'result'} for the call's id` : describeReply(unknownTool)}`,
    );
    bodiesOk &&= answered;
  }
  out.push(result('error-body-intact', bodiesOk ? 'pass' : 'fail', bodies.join('; ')));
  return out;
}

const ALLOW_HEADERS = [
  'authorization',
  'content-type',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
  'mcp-method',
  'mcp-name',
  'mcp-param-doctor-check',
];

function originAllowed(allowOrigin: string | undefined, origin: string): boolean {
  return allowOrigin === '*' || allowOrigin === origin;
}

const list = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);

export async function corsChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const { peer } = ctx;
  const origin = ctx.opts.origin ?? 'https://sluice-doctor.example';
  const out: CheckResult[] = [];
  const pre = await peer.wire.exchange(peer.url, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': ALLOW_HEADERS.join(', '),
      [H.doctorMarker]: peer.marker,
    },
    timeoutMs: 15_000,
  });
  const allowOrigin = pre.headers['access-control-allow-origin'];
  if (allowOrigin === undefined)
    out.push(
      result(
        'cors-preflight',
        'warn',
        `the preflight (Origin: ${origin}) was answered ${pre.status} with no Access-Control-Allow-Origin: browser-based MCP clients cannot use this URL (fine if none do)`,
      ),
    );
  else {
    const problems: string[] = [];
    if (pre.status < 200 || pre.status > 299) problems.push(`status ${pre.status}`);
    if (!originAllowed(allowOrigin, origin))
      problems.push(`allows origin "${allowOrigin}", not ${origin} (set --origin to one it allows)`);
    const allowed = list(pre.headers['access-control-allow-headers']);
    const missing = allowed.includes('*')
      ? ['authorization'].filter((h) => !allowed.includes(h))
      : ALLOW_HEADERS.filter((h) => !allowed.includes(h));
    if (missing.length)
      problems.push(
        `does not allow ${missing.join(', ')}${allowed.includes('*') ? ' ("*" does not cover Authorization)' : ''}`,
      );
    const methods = list(pre.headers['access-control-allow-methods']);
    const missingMethods = ['post', 'delete'].filter((m) => !methods.includes(m) && !methods.includes('*'));
    if (missingMethods.length) problems.push(`does not allow method(s) ${missingMethods.join(', ').toUpperCase()}`);
    out.push(
      problems.length
        ? result('cors-preflight', 'fail', `the preflight ${problems.join('; ')}`)
        : result(
            'cors-preflight',
            'pass',
            `${pre.status}: allows ${origin === allowOrigin ? origin : '*'}, POST/GET/DELETE and the MCP headers (with a requested Mcp-Param-*)`,
          ),
    );
  }

  const { ex, session } = await peer.initialize({ origin });
  if (session) ctx.opened.push(session);
  const exposeOrigin = ex.headers['access-control-allow-origin'];
  if (ex.status === 403)
    out.push(
      result(
        'cors-expose-session-id',
        'warn',
        `initialize with Origin: ${origin} was refused (403): pass --origin with an origin the server allows`,
      ),
    );
  else if (exposeOrigin === undefined)
    out.push(
      result(
        'cors-expose-session-id',
        'warn',
        `initialize with Origin: ${origin} got no Access-Control-Allow-Origin: browsers hide the whole answer (fine if no browser client uses this URL)`,
      ),
    );
  else {
    const exposed = list(ex.headers['access-control-expose-headers']);
    const all = exposed.includes('*');
    const lacks = ['mcp-session-id', 'www-authenticate', 'mcp-protocol-version'].filter(
      (h) => !all && !exposed.includes(h),
    );
    const shown = `Access-Control-Expose-Headers: ${ex.headers['access-control-expose-headers'] ?? 'none'}`;
    if (lacks.includes('mcp-session-id'))
      out.push(result('cors-expose-session-id', 'fail', `${shown}: a browser client never sees Mcp-Session-Id`));
    else if (lacks.length)
      out.push(result('cors-expose-session-id', 'warn', `${shown}: ${lacks.join(', ')} not exposed`));
    else out.push(result('cors-expose-session-id', 'pass', shown));
  }
  out.push(await oauthDiscoveryCheck(ctx));
  return out;
}

/** The opening's own results: the session round trip and the notification's status. */
export function describeNotification(ex: RpcExchange): CheckResult {
  return ex.status === 202 && ex.body === ''
    ? result('notification-202', 'pass', 'notifications/initialized answered 202 with no body')
    : result('notification-202', 'fail', `notifications/initialized answered ${describeReply(ex)}, not 202 Accepted`);
}
