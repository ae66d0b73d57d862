// OAuth discovery through the path: MCP clients that get a 401 follow its `resource_metadata`,
// else fetch /.well-known/oauth-protected-resource<MCP path> and then the bare well-known path on
// the public origin, and refuse metadata whose `resource` is not the URL they were given (the
// SDKs' checkResourceAllowed: same origin, the MCP path at or below the resource's path).
import { H } from '../core/mcp.ts';
import type { DoctorContext } from './context.ts';
import { describeReply } from './mcp-peer.ts';
import { result, type CheckResult } from './report.ts';

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** Does a client that was given `target` accept metadata naming `resource`? */
export function resourceMatches(target: URL, resource: string): boolean {
  let r: URL;
  try {
    r = new URL(resource);
  } catch {
    return false;
  }
  if (r.origin !== target.origin) return false;
  const want = r.pathname.endsWith('/') ? r.pathname : `${r.pathname}/`;
  const have = target.pathname.endsWith('/') ? target.pathname : `${target.pathname}/`;
  return have.startsWith(want);
}

export async function oauthDiscoveryCheck(ctx: DoctorContext): Promise<CheckResult> {
  const { peer } = ctx;
  const target = peer.url;
  const path = target.pathname === '/' ? '' : target.pathname.replace(/\/$/, '');
  const get = (url: URL) =>
    peer.wire.exchange(url, {
      method: 'GET',
      headers: { accept: 'application/json', [H.protocolVersion]: '2025-11-25', [H.doctorMarker]: peer.marker },
      timeoutMs: peer.timeoutMs,
    });

  // Without the user's credentials, does the server ask for a token, and where does it point?
  const bare = Object.fromEntries(Object.entries(peer.headers()).filter(([k]) => k.toLowerCase() !== 'authorization'));
  const anonymous = await peer.post(peer.initializeMessage(), { headers: bare });
  const opened = anonymous.headers[H.sessionId];
  if (opened)
    await peer
      .post(undefined, {
        method: 'DELETE',
        headers: { ...bare, [H.sessionId]: opened, [H.protocolVersion]: '2025-11-25' },
        timeoutMs: 5_000,
      })
      .catch(() => undefined);
  const challenge = anonymous.status === 401 ? anonymous.headers['www-authenticate'] : undefined;
  const pointed = challenge ? /resource_metadata="([^"]+)"/i.exec(challenge)?.[1] : undefined;

  const candidates: URL[] = [];
  if (pointed) {
    let u: URL | undefined;
    try {
      u = new URL(pointed, target);
    } catch {
      u = undefined;
    }
    if (!u)
      return result(
        'oauth-discovery',
        'fail',
        `the 401 challenge names resource_metadata="${pointed}", which is not a URL`,
      );
    // Only the public origin is fetched: the doctor never follows a server's pointer elsewhere.
    if (u.origin !== target.origin)
      return result(
        'oauth-discovery',
        'fail',
        `the 401 challenge points clients at ${u.href}, not at ${target.origin}: an internal or upstream address leaked through the front (clients fetch it from wherever they run)`,
      );
    candidates.push(u);
  }
  candidates.push(new URL(`${WELL_KNOWN}${path}`, target.origin));
  if (path) candidates.push(new URL(WELL_KNOWN, target.origin));

  const tried: string[] = [];
  for (const url of candidates) {
    const ex = await get(url);
    let doc: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(ex.body) as unknown;
      doc =
        typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
          ? (parsed as Record<string, unknown>)
          : undefined;
    } catch {
      doc = undefined;
    }
    if (ex.status !== 200 || !doc) {
      tried.push(`${url.pathname}: ${describeReply(ex)}`);
      continue;
    }
    const resource = doc['resource'];
    const servers = Array.isArray(doc['authorization_servers'])
      ? (doc['authorization_servers'] as unknown[]).join(', ')
      : 'none listed';
    if (typeof resource !== 'string')
      return result(
        'oauth-discovery',
        'fail',
        `${url.pathname} answered JSON without a "resource": clients cannot use it`,
      );
    if (!resourceMatches(target, resource)) {
      return result(
        'oauth-discovery',
        'fail',
        `${url.pathname} names resource "${resource}", but clients were given ${target.href}: SDK clients refuse it (and tokens would be issued for the wrong audience)`,
      );
    }
    if (challenge && !pointed)
      return result(
        'oauth-discovery',
        'warn',
        `the 401 challenge has no resource_metadata (clients fall back to ${url.pathname}, which works): ${challenge}`,
      );
    return result(
      'oauth-discovery',
      'pass',
      `${url.pathname} names resource ${resource} (authorization servers: ${servers})${challenge ? '; a request without a token gets 401 with resource_metadata' : ''}`,
    );
  }
  if (anonymous.status === 401) {
    return result(
      'oauth-discovery',
      'fail',
      `the server asks for a token (401${challenge ? `, WWW-Authenticate: ${challenge}` : ', no WWW-Authenticate'}) but no protected-resource metadata is reachable through this path (${tried.join('; ')}): clients cannot find where to get one`,
    );
  }
  // The probe serves metadata: not reaching it means the front does not route the well-known path.
  if (ctx.instances.size > 0)
    return result(
      'oauth-discovery',
      'fail',
      `\`sluice probe\` serves protected-resource metadata, but none came back through this path (${tried.join('; ')}): the front does not route /.well-known/oauth-protected-resource to the server`,
    );
  return result(
    'oauth-discovery',
    'skip',
    `no OAuth here: initialize without credentials was answered ${anonymous.status}, and no protected-resource metadata (${tried.join('; ')})`,
  );
}
