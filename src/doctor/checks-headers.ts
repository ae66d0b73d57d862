// Header round trips, judged by what the probe says reached it: MCP-Protocol-Version,
// Authorization, Accept, Host (and X-Forwarded-*), and the 2026-07-28 mirrored headers.
import { randomUUID } from 'node:crypto';
import { FIRST_STATELESS_VERSION, H } from '../core/mcp.ts';
import { header, probeAnswer, type DoctorContext, type ProbeInfo } from './context.ts';
import { describeReply } from './mcp-peer.ts';
import { result, type CheckResult } from './report.ts';

const BEARER_PREFIX = 'Bearer sluice-doctor-';

export async function headerChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const { peer } = ctx;
  const call = ctx.call!;
  const out: CheckResult[] = [];
  const ex = await call('probe_info', {});
  const info = probeAnswer<ProbeInfo>(ex);
  if (!info) {
    const why = `probe_info answered ${describeReply(ex)}`;
    return ['protocol-version-forwarded', 'accept-forwarded', 'host-forwarded', 'authorization-forwarded'].map((id) =>
      result(id as 'accept-forwarded', 'fail', why),
    );
  }
  const got = (name: string) => header(info.headers, name);

  const version = got(H.protocolVersion);
  const sent = ctx.callVersion;
  out.push(
    version === sent
      ? result('protocol-version-forwarded', 'pass', `sent ${sent}, the server got ${version}`)
      : result(
          'protocol-version-forwarded',
          'fail',
          version === undefined
            ? `sent MCP-Protocol-Version: ${sent}; the server got none`
            : `sent ${sent}; the server got "${version}"`,
        ),
  );

  const accept = got('accept') ?? '';
  const acceptOk = accept.includes('application/json') && accept.includes('text/event-stream');
  out.push(
    result(
      'accept-forwarded',
      acceptOk ? 'pass' : 'fail',
      acceptOk
        ? `the server got "${accept}"`
        : `sent "application/json, text/event-stream"; the server got "${accept || 'nothing'}"`,
    ),
  );

  const publicHost = peer.url.host;
  const host = got('host');
  const fwdHost = got('x-forwarded-host');
  const forwarded = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'].filter(
    (n) => got(n) !== undefined,
  );
  const fwdNote = forwarded.length ? `; forwarding headers: ${forwarded.join(', ')}` : '; no X-Forwarded-* headers';
  if (host === publicHost) out.push(result('host-forwarded', 'pass', `the server got Host: ${host}${fwdNote}`));
  else if (fwdHost === publicHost)
    out.push(
      result(
        'host-forwarded',
        'pass',
        `Host was rewritten to ${host}; X-Forwarded-Host carries the public ${publicHost}${fwdNote}`,
      ),
    );
  else
    out.push(
      result(
        'host-forwarded',
        'warn',
        `requested Host ${publicHost}; the server got Host: ${host ?? 'none'} and no X-Forwarded-Host with it${fwdNote}`,
      ),
    );

  // A made-up token unless the user gave one: a front that checks tokens itself refuses it,
  // which says it does not pass them through (as an OAuth resource server should not).
  const userAuth = Object.entries(peer.userHeaders).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const sentAuth = userAuth ?? `${BEARER_PREFIX}${randomUUID()}`;
  const authEx = await call('probe_info', {}, { headers: { authorization: sentAuth } });
  const authInfo = probeAnswer<ProbeInfo>(authEx);
  const shown = userAuth ? 'the given Authorization' : 'a test bearer token';
  if (!authInfo) {
    const refused = authEx.status === 401 || authEx.status === 403;
    out.push(
      result(
        'authorization-forwarded',
        refused && !userAuth ? 'warn' : 'fail',
        refused && !userAuth
          ? `the front answered ${authEx.status} to a test bearer token: it checks tokens itself; pass --header "Authorization: Bearer …" to check forwarding`
          : `probe_info with ${shown} answered ${describeReply(authEx)}`,
      ),
    );
  } else {
    const arrived = header(authInfo.headers, 'authorization');
    if (arrived === sentAuth)
      out.push(result('authorization-forwarded', 'pass', `${shown} reached the server unchanged`));
    else if (arrived === undefined)
      out.push(result('authorization-forwarded', 'fail', `sent ${shown}; the server got no Authorization header`));
    else
      out.push(
        result(
          'authorization-forwarded',
          'warn',
          `sent ${shown}; the server got a different one (a gateway replacing credentials, as an OAuth resource server does)`,
        ),
      );
  }
  return out;
}

/** A stateless 2026-07-28 call with mirrored headers; the probe's v2 server reports them. */
export async function mirroredHeaderCheck(ctx: DoctorContext): Promise<CheckResult> {
  const { peer } = ctx;
  const nonce = randomUUID();
  const marker = `${peer.marker}-stateless`;
  const param = `${H.paramPrefix}doctor-check`;
  const ex = await peer.callToolStateless('probe_info', {}, { headers: { [param]: nonce, [H.doctorMarker]: marker } });
  let headers = probeAnswer<ProbeInfo>(ex)?.headers;
  let outcome = '';
  if (!headers) {
    // Refused somewhere: what reached the probe tells whether the headers were lost on the way.
    outcome = `; the request was answered ${describeReply(ex)}`;
    if (ctx.call) {
      const rec = probeAnswer<{ records: { headers: ProbeInfo['headers'] }[] }>(
        await ctx.call('probe_requests', { marker }),
      );
      headers = rec?.records.at(-1)?.headers;
    }
    if (!headers)
      return result('mcp-param-forwarded', 'fail', `a 2026-07-28 tools/call did not reach the server${outcome}`);
  }
  const want: [string, string][] = [
    [H.method, 'tools/call'],
    [H.name, 'probe_info'],
    [param, nonce],
  ];
  const missing = want.filter(([k, v]) => header(headers, k) !== v).map(([k]) => k);
  const version = header(headers, H.protocolVersion);
  if (missing.length)
    return result('mcp-param-forwarded', 'fail', `the server did not get ${missing.join(', ')} as sent${outcome}`);
  if (version !== FIRST_STATELESS_VERSION)
    return result(
      'mcp-param-forwarded',
      'skip',
      `Mcp-Method, Mcp-Name and Mcp-Param-* arrived, but MCP-Protocol-Version did not (see protocol-version-forwarded)${outcome}`,
    );
  if (outcome) return result('mcp-param-forwarded', 'fail', `the headers arrived, but the call failed${outcome}`);
  return result(
    'mcp-param-forwarded',
    'pass',
    `a stateless 2026-07-28 call arrived with Mcp-Method, Mcp-Name and an Mcp-Param-* header intact`,
  );
}
