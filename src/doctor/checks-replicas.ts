// Affinity (every request of a session reaches the replica that created it, told by the probe's
// instance names) and the request-body limit in front.
import { probeAnswer, probeInstanceOf, type DoctorContext, type ProbeInfo } from './context.ts';
import { describeReply, toolText } from './mcp-peer.ts';
import { result, type CheckResult } from './report.ts';

const REQUESTS_PER_SESSION = 4;

interface Trail {
  creator?: string;
  /** One entry per request: the instance that answered, or what came back instead. */
  answers: { instance?: string; problem?: string }[];
}

async function followSession(ctx: DoctorContext, isProbe: boolean): Promise<Trail> {
  const { peer } = ctx;
  const { ex, session } = await peer.initialize();
  if (!session) return { answers: [{ problem: `initialize answered ${describeReply(ex)}` }] };
  ctx.opened.push(session);
  const trail: Trail = { ...(isProbe ? { creator: probeInstanceOf(session.serverName) } : {}), answers: [] };
  await peer.notifyInitialized(session);
  for (let i = 0; i < REQUESTS_PER_SESSION; i++) {
    const r = isProbe ? await peer.callTool(session, 'probe_info', {}) : await peer.request(session, 'tools/list');
    if (!r.reply || 'error' in r.reply) trail.answers.push({ problem: describeReply(r) });
    else trail.answers.push(isProbe ? { instance: probeAnswer<ProbeInfo>(r)?.instance ?? '?' } : {});
  }
  return trail;
}

export async function affinityCheck(
  ctx: DoctorContext,
  isProbe: boolean,
  lostAtOpening: string[],
): Promise<CheckResult> {
  const n = ctx.opts.sessions ?? (ctx.opts.quick ? 6 : 12);
  const trails: Trail[] = [];
  // A few at a time: enough to spread over replicas, gentle on a production server.
  for (let i = 0; i < n; i += 3)
    trails.push(...(await Promise.all(Array.from({ length: Math.min(3, n - i) }, () => followSession(ctx, isProbe)))));
  const lost: string[] = [...lostAtOpening];
  const instances = new Set<string>();
  for (const t of trails) {
    if (t.creator) instances.add(t.creator);
    const bad = t.answers.findIndex(
      (a) => a.problem !== undefined || (t.creator !== undefined && a.instance !== t.creator),
    );
    for (const a of t.answers) if (a.instance) instances.add(a.instance);
    if (bad >= 0) {
      const a = t.answers[bad]!;
      lost.push(
        a.problem
          ? `request ${bad + 1} of a session${t.creator ? ` created on ${t.creator}` : ''} was answered ${a.problem}`
          : `request ${bad + 1} of a session created on ${t.creator} reached ${a.instance}`,
      );
    }
  }
  for (const i of instances) ctx.instances.add(i);
  const total = trails.length + lostAtOpening.length;
  const seen = [...instances].sort();
  if (lost.length)
    return result(
      'affinity',
      'fail',
      `${lost.length} of ${total} sessions lost their replica: ${lost.slice(0, 2).join('; ')}${isProbe ? `; instances seen: ${seen.join(', ')}` : ''}`,
    );
  const what = `${trails.length} sessions × ${REQUESTS_PER_SESSION} requests`;
  if (!isProbe)
    return result(
      'affinity',
      'pass',
      `${what}, all answered (behind the probe the doctor can also tell which replica answered)`,
    );
  return result(
    'affinity',
    'pass',
    seen.length > 1
      ? `${what}, each answered by the instance that created it; instances seen: ${seen.join(', ')}`
      : `${what}, all answered by ${seen[0]} (one replica answers: affinity is not exercised)`,
  );
}

const MiB = 1024 * 1024;
/** The MCP TypeScript SDK's cap is 4 MiB of body: stay just under it. */
const SIZES = [
  { label: '1 MiB', data: MiB, body: undefined },
  { label: '4 MiB', data: undefined, body: 4 * MiB - 256 },
] as const;

export async function bodyLimitCheck(ctx: DoctorContext): Promise<CheckResult> {
  const { peer } = ctx;
  const outcomes: { label: string; ok: boolean; text: string }[] = [];
  for (const size of SIZES) {
    const { message, headers } = peer.toolCall('receive', { data: '' }, false, ctx.stateless);
    const overhead = Buffer.byteLength(JSON.stringify(message));
    const chars = size.data ?? size.body - overhead;
    (message['params'] as { arguments: { data: string } }).arguments.data = 'x'.repeat(chars);
    const bytes = overhead + chars;
    const ex = await peer.post(message, {
      headers: ctx.session && !ctx.stateless ? peer.sessionHeaders(ctx.session) : peer.headers(headers),
      timeoutMs: 60_000,
    });
    const ok = toolText(ex) === String(chars);
    outcomes.push({
      label: size.label,
      ok,
      text: ok
        ? `${size.label} (${bytes} bytes) passed`
        : `${size.label} (${bytes} bytes) was answered ${describeReply(ex)}`,
    });
  }
  const [small, large] = outcomes as [(typeof outcomes)[0], (typeof outcomes)[0]];
  const detail = outcomes.map((o) => o.text).join('; ');
  if (!small.ok) return result('body-limit', 'fail', detail);
  if (!large.ok) return result('body-limit', 'warn', `${detail}: the limit in front is between 1 and 4 MiB`);
  return result('body-limit', 'pass', detail);
}
