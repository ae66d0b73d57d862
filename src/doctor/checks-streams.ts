// Streams through the path: are events passed as they are sent, uncompressed; do silent
// streams survive; does a cut stream resume with Last-Event-ID (and does the header arrive)?
import { H } from '../core/mcp.ts';
import { header, probeAnswer, seconds, sleep, type DoctorContext, type ProbeInfo } from './context.ts';
import { describeReply, parseJson, type RpcExchange } from './mcp-peer.ts';
import type { Exchange } from './wire.ts';
import { result, type CheckResult } from './report.ts';

/** Later than this after its peers, an event was held back. */
const LATE_MS = 300;
const OFFERED_ENCODINGS = 'gzip, deflate, br';

interface Emitted {
  i: number;
  sentAt: number;
  at: number;
}

function emitted(ex: RpcExchange): Emitted[] {
  return ex.notifications.flatMap((n) => {
    const params = n.message['params'] as { message?: string } | undefined;
    const m = parseJson(params?.message ?? '');
    return m && typeof m['i'] === 'number' && typeof m['sentAt'] === 'number'
      ? [{ i: m['i'], sentAt: m['sentAt'], at: n.at }]
      : [];
  });
}

export async function sseChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const count = 6;
  const intervalMs = 400;
  const ex = await ctx.call!(
    'emit_events',
    { count, intervalMs },
    { progress: true, headers: { 'accept-encoding': OFFERED_ENCODINGS }, timeoutMs: 20_000 },
  );
  const type = ex.headers['content-type'] ?? '';
  const encoding = ex.headers['content-encoding'];
  const out: CheckResult[] = [];
  if (!type.includes('text/event-stream')) {
    const why = `a streaming tool call was answered ${describeReply(ex)}, not as text/event-stream`;
    return [
      result('sse-unbuffered', 'fail', why),
      result('sse-compression', encoding ? 'fail' : 'skip', encoding ? `${why}, ${encoding}-encoded` : why),
    ];
  }
  out.push(
    encoding
      ? result(
          'sse-compression',
          'fail',
          `the event stream came ${encoding}-encoded (the client offered ${OFFERED_ENCODINGS})`,
        )
      : result('sse-compression', 'pass', `not compressed although the client offered ${OFFERED_ENCODINGS}`),
  );
  const events = emitted(ex);
  // Clocks of client and server differ by a constant: compare each event's transit with the
  // fastest one instead of with the server's clock.
  const transit = events.map((e) => e.at - (e.sentAt - ex.sentAt));
  const fastest = events.length ? Math.min(...transit) : 0;
  ctx.timelines.push({
    check: 'sse-unbuffered',
    label: `${count} events ${intervalMs} ms apart`,
    headersMs: ex.headersAt,
    endMs: ex.end.at,
    end: ex.reply ? 'complete' : ex.end.how,
    events: events.map((e) => ({ sentMs: e.sentAt - ex.sentAt + fastest, receivedMs: e.at })),
    heartbeatsMs: ex.comments,
  });
  if (events.length < count || !ex.reply) {
    out.push(
      result(
        'sse-unbuffered',
        'fail',
        `the stream ended after ${events.length} of ${count} events without the result (${ex.end.how}${ex.end.error ? `: ${ex.end.error}` : ''})`,
      ),
    );
    return out;
  }
  const lag = transit.map((t) => t - fastest);
  const worst = Math.max(...lag);
  const heldHeaders = ex.headersAt - ctx.rttMs > LATE_MS;
  const accel = ex.headers['x-accel-buffering']
    ? `; X-Accel-Buffering: ${ex.headers['x-accel-buffering']} reached the client`
    : '';
  const what = `${count} events ${intervalMs} ms apart: largest delay ${worst} ms, response headers after ${ex.headersAt} ms (a plain request takes ${ctx.rttMs} ms)${accel}`;
  const held = [
    worst > LATE_MS ? 'events were held back' : '',
    heldHeaders ? 'the response headers were held until the body came' : '',
  ].filter(Boolean);
  out.push(
    result(
      'sse-unbuffered',
      held.length ? 'fail' : 'pass',
      held.length
        ? `${held.join(' and ')}: ${what}${encoding ? ` (the stream was ${encoding}-compressed, see sse-compression)` : ''}`
        : what,
    ),
  );
  return out;
}

interface Silence {
  seconds: number;
  ex: RpcExchange;
}

function heartbeatNote(ex: RpcExchange): string {
  return ex.comments.length ? `, ${ex.comments.length} heartbeat comment(s) seen` : '';
}

function cutNote(s: Silence): string {
  const { ex } = s;
  if (ex.status !== 200) return `answered ${describeReply(ex)} after ${seconds(ex.end.at)}`;
  return `cut after ${seconds(ex.end.at)} (${ex.end.how}${ex.end.error ? `: ${ex.end.error}` : ''})`;
}

export async function idleCheck(ctx: DoctorContext): Promise<CheckResult> {
  const durations = ctx.opts.idleSeconds ?? (ctx.opts.quick ? [10] : [60, 100, 130]);
  const longest = Math.max(...durations);
  const call = ctx.call!;
  const silent = durations.map(async (d): Promise<Silence> => ({
    seconds: d,
    ex: await call('stay_silent', { ms: d * 1000 }, { timeoutMs: d * 1000 + 30_000 }),
  }));
  // In a full run, a stream with an event every `beatEvery` s over the longest silence tells an
  // idle timeout (heartbeats help) from a cap on the stream's whole life. 20 s is under every
  // common idle limit; shorter silences (--idle) get beats at half the shortest one.
  const beatEvery = Math.max(1, Math.min(20, Math.floor(Math.min(...durations) / 2)));
  const beating = ctx.opts.quick
    ? undefined
    : call(
        'emit_events',
        { count: Math.ceil(longest / beatEvery) + 1, intervalMs: beatEvery * 1000 },
        { progress: true, timeoutMs: longest * 1000 + 60_000 },
      );
  const results = await Promise.all(silent);
  for (const r of results)
    ctx.timelines.push({
      check: 'idle-survival',
      label: `${r.seconds} s silent`,
      headersMs: r.ex.headersAt,
      endMs: r.ex.end.at,
      end: r.ex.reply ? 'complete' : r.ex.status !== 200 ? `answered ${r.ex.status}` : r.ex.end.how,
      events: [],
      silentMs: r.seconds * 1000,
      heartbeatsMs: r.ex.comments,
    });
  const cut = results.filter((r) => !r.ex.reply);
  const parts = results.map((r) =>
    r.ex.reply
      ? `${r.seconds} s silent: survived${heartbeatNote(r.ex)}`
      : `${r.seconds} s silent: ${cutNote(r)}${heartbeatNote(r.ex)}`,
  );
  if (beating) {
    const b = await beating;
    parts.push(
      b.reply
        ? `a stream with an event every ${beatEvery} s lived ${seconds(b.end.at)}: heartbeats keep streams open`
        : `a stream with an event every ${beatEvery} s was cut after ${seconds(b.end.at)} too: an idle limit under ${beatEvery} s, or a cap on a stream's whole life`,
    );
  }
  if (ctx.opts.quick && !ctx.opts.idleSeconds) parts.push('quick run: the full run also checks 60, 100 and 130 s');
  return result('idle-survival', cut.length === 0 ? 'pass' : 'fail', parts.join('; '));
}

/** `buffered`: sse-unbuffered failed, so a silent resumed stream proves nothing. */
export async function resumeChecks(ctx: DoctorContext, buffered: boolean): Promise<CheckResult[]> {
  const { peer } = ctx;
  const s = ctx.session!;
  const count = 5;
  let seenIds: string[] = [];
  const first = await peer.callTool(
    s,
    'emit_events',
    { count, intervalMs: 300 },
    {
      progress: true,
      timeoutMs: 15_000,
      onEvent: (ev, msg) => {
        if (ev.id && msg?.['method'] === 'notifications/progress') seenIds.push(ev.id);
        return seenIds.length >= 2;
      },
    },
  );
  if (first.end.how !== 'stopped') {
    const why =
      emitted(first).length >= 2
        ? 'the events carry no id, so a client cannot resume'
        : `the stream gave fewer than 2 events: ${describeReply(first)}`;
    return [result('resume', 'fail', why), result('last-event-id-forwarded', 'skip', 'nothing to resume (see resume)')];
  }
  const lastId = seenIds[seenIds.length - 1]!;
  seenIds = [];
  await sleep(200);
  const marker = `${peer.marker}-resume`;
  const got: number[] = [];
  let done = false;
  let again: Exchange;
  // The server still holds the stream until the front passes the client's disconnect on: it
  // answers 409 meanwhile, and clients retry.
  for (let attempt = 1; ; attempt++) {
    again = await peer.wire.exchange(peer.url, {
      method: 'GET',
      headers: peer.sessionHeaders(s, {
        accept: 'text/event-stream',
        [H.lastEventId]: lastId,
        [H.doctorMarker]: marker,
      }),
      timeoutMs: 10_000,
      onEvent: (ev) => {
        const msg = parseJson(ev.data);
        const m = parseJson(String((msg?.['params'] as { message?: string } | undefined)?.message ?? ''));
        if (m && typeof m['i'] === 'number') got.push(m['i']);
        if (msg && ('result' in msg || 'error' in msg)) done = true;
        return done;
      },
    });
    if (again.status !== 409 || attempt >= 10) break;
    await sleep(300);
  }
  const out: CheckResult[] = [];
  const rest = Array.from({ length: count - 2 }, (_, k) => k + 3);
  const complete = done && rest.every((i) => got.includes(i));
  const heldBack = buffered && !complete && again.end.how === 'timeout';
  out.push(
    heldBack
      ? result(
          'resume',
          'skip',
          'not judged: events are held back in front, so the resumed stream showed nothing in time (see sse-unbuffered)',
        )
      : complete
        ? result(
            'resume',
            'pass',
            `cut after 2 of ${count} events; a GET with Last-Event-ID brought events ${got.join(', ')} and the result`,
          )
        : result(
            'resume',
            'fail',
            again.status !== 200
              ? `the resume GET was answered ${describeReply(again)}${again.status === 409 ? ' for 3 s: the front keeps the old stream open upstream after the client left' : ''}`
              : `the resumed stream brought events [${got.join(', ')}] of [${rest.join(', ')}]${done ? '' : ' and no result'} (${again.end.how})`,
          ),
  );
  const rec = probeAnswer<{ instance: string; records: { method: string; headers: ProbeInfo['headers'] }[] }>(
    await peer.callTool(s, 'probe_requests', { marker }),
  );
  const arrived = rec?.records.find((r) => r.method === 'GET');
  if (!rec) out.push(result('last-event-id-forwarded', 'fail', 'could not ask the probe what reached it'));
  else if (!arrived)
    out.push(
      result('last-event-id-forwarded', 'fail', `the resume GET never reached the session's instance ${rec.instance}`),
    );
  else {
    const value = header(arrived.headers, H.lastEventId);
    out.push(
      value === lastId
        ? result('last-event-id-forwarded', 'pass', 'the resume GET reached the server with Last-Event-ID unchanged')
        : value === undefined
          ? result('last-event-id-forwarded', 'fail', 'the resume GET reached the server without Last-Event-ID')
          : result(
              'last-event-id-forwarded',
              complete ? 'pass' : 'fail',
              `Last-Event-ID arrived rewritten ("${value.slice(0, 60)}")${complete ? ' and the resume worked' : ''}`,
            ),
    );
  }
  return out;
}
