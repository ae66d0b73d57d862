// `sluice doctor URL --html FILE`: the report as one self-contained HTML file (inline CSS and
// SVG, no script, nothing fetched), to attach to a ticket or open offline. Beside the checks and
// each failure's fix (for the chosen platform, or all of them), a timeline of the streams the
// doctor watched: each SSE event where the probe sent it and where it arrived through the path,
// joined by a line, so buffering (lines fanning out to one late arrival) and idle cuts (a silent
// call's bar ending early) are seen at a glance.
import { PLATFORMS, type Fix } from './fixes.ts';
import type { Report, Status, StreamTimeline } from './report.ts';

export type Platform = (typeof PLATFORMS)[number]['key'];

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const LABEL: Record<Status, string> = { pass: 'Pass', fail: 'Fail', warn: 'Warning', skip: 'Skipped' };

const CSS = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;margin:0 auto;padding:1rem;max-width:64rem}
h1{font-size:1.35rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.meta{color:#4a4a4a;margin:.2rem 0 1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #c8c8c8;vertical-align:top}
th{background:#f3f4f6}.status{font-weight:700;white-space:nowrap}
.s-pass{color:#11652b}.s-fail{color:#a1001b}.s-warn{color:#8a4b00}.s-skip{color:#4a4a4a}
.fix{background:#fff6f6;border-left:4px solid #a1001b;padding:.5rem .75rem;margin:.5rem 0}
.fix.warn{background:#fffaf0;border-color:#8a4b00}.fix dt{font-weight:600}.fix dd{margin:0 0 .4rem}
code{font-size:90%;background:#f3f4f6;padding:0 .2rem}
figure{margin:1rem 0}figcaption{color:#4a4a4a;font-size:.92rem}
svg text{font:12px system-ui,sans-serif;fill:#1a1a1a}.axis{stroke:#888}.lane{stroke:#d0d0d0}
.sent{fill:#0b4f9c}.received{fill:#11652b}.late{fill:#a1001b}.link{stroke:#0b4f9c;stroke-opacity:.55}
.silence{fill:#dbe6f5}.alive{fill:#11652b}.cut{fill:#a1001b}.beat{stroke:#8a4b00}
@media (max-width:40rem){body{font-size:14px}}
`;

/** Later than this after the fastest event, an event counts as held (as the check judges it). */
const LATE_MS = 300;

export function renderHtml(report: Report, platform?: Platform): string {
  const counts = (s: Status) => report.checks.filter((c) => c.status === s).length;
  const rows = report.checks
    .map(
      (c) =>
        `<tr id="check-${c.id}" data-status="${c.status}"><td class="status s-${c.status}">${LABEL[c.status]}</td>` +
        `<th scope="row"><code>${esc(c.id)}</code><br>${esc(c.title)}</th><td>${esc(c.detail)}${c.fix ? fixBlock(c.fix, c.status, platform) : ''}</td></tr>`,
    )
    .join('\n');
  const who = report.probeInstances.length
    ? `sluice probe ${report.probeInstances.join(', ')} answered`
    : 'an MCP server (not the probe: the checks that need it were skipped)';
  // Events first, then the silences, whatever order the checks finished in.
  const timelines = [...(report.timelines ?? [])].sort(
    (a, b) => Number(a.check !== 'sse-unbuffered') - Number(b.check !== 'sse-unbuffered'),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>sluice doctor: ${esc(report.target)}</title><style>${CSS}</style></head>
<body>
<header><h1>sluice doctor</h1>
<p class="meta"><strong>${esc(report.target)}</strong>: ${esc(who)}${report.quick ? '; quick run' : ''}.
${report.checks.length} checks: ${counts('pass')} passed, ${counts('fail')} failed, ${counts('warn')} warnings, ${counts('skip')} skipped, in ${(report.durationMs / 1000).toFixed(1)} s.
${platform ? `Fixes shown for ${esc(PLATFORMS.find((p) => p.key === platform)!.label)}.` : 'Fixes shown for every platform.'}</p></header>
<main>
${timelines.length ? `<h2>Streams through the path</h2>\n${timelines.map(timelineFigure).join('\n')}` : ''}
<h2>Checks</h2>
<table><caption class="meta">Every check, in the order the doctor runs them</caption>
<thead><tr><th scope="col">Status</th><th scope="col">Check</th><th scope="col">What the doctor saw</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</main></body></html>
`;
}

function fixBlock(fix: Fix, status: Status, platform?: Platform): string {
  const which = platform ? PLATFORMS.filter((p) => p.key === platform) : PLATFORMS;
  return (
    `<div class="fix${status === 'warn' ? ' warn' : ''}"><dl><dt>Likely cause</dt><dd>${esc(fix.cause)}</dd>` +
    which.map((p) => `<dt>Fix on ${esc(p.label)}</dt><dd>${esc(fix[p.key])}</dd>`).join('') +
    '</dl></div>'
  );
}

const W = 720;
const LEFT = 185;

function timelineFigure(t: StreamTimeline, n: number): string {
  return t.check === 'sse-unbuffered' ? eventsFigure(t, n) : silenceFigure(t, n);
}

/** Two lanes: sent by the probe (top), received through the path (bottom), one line per event. */
function eventsFigure(t: StreamTimeline, n: number): string {
  const last = Math.max(t.endMs, t.headersMs, ...t.events.map((e) => Math.max(e.sentMs, e.receivedMs)), 1);
  const x = (ms: number) => (LEFT + (Math.max(0, ms) / last) * (W - LEFT - 20)).toFixed(1);
  const fastest = Math.min(...t.events.map((e) => e.receivedMs - e.sentMs), 0);
  const worst = Math.max(0, ...t.events.map((e) => e.receivedMs - e.sentMs - fastest));
  const held = worst > LATE_MS;
  // Held events last, so a red dot is not hidden under the one that arrived with it.
  const order = t.events
    .map((e, i) => ({ e, i, late: e.receivedMs - e.sentMs - fastest > LATE_MS }))
    .sort((a, b) => Number(a.late) - Number(b.late));
  const marks = order
    .map(({ e, i, late }) => {
      return (
        `<line class="link" x1="${x(e.sentMs)}" y1="40" x2="${x(e.receivedMs)}" y2="100"/>` +
        `<circle class="sent" cx="${x(e.sentMs)}" cy="40" r="5" data-event="${i + 1}" data-sent-ms="${Math.round(e.sentMs)}"><title>event ${i + 1} sent at ${Math.round(e.sentMs)} ms</title></circle>` +
        `<circle class="received${late ? ' late' : ''}" cx="${x(e.receivedMs)}" cy="100" r="5" data-event="${i + 1}" data-sent-ms="${Math.round(e.sentMs)}" data-received-ms="${Math.round(e.receivedMs)}"><title>event ${i + 1} received at ${Math.round(e.receivedMs)} ms</title></circle>`
      );
    })
    .join('');
  const summary = t.events.length
    ? `${t.events.length} events; the latest arrived ${Math.round(worst)} ms after it was sent (compared with the fastest)${held ? ': held back on the way' : ': passed as sent'}`
    : 'no event arrived';
  return `<figure id="timeline-${n}" data-check="${t.check}" data-held="${held}">
<svg viewBox="0 0 ${W} 150" width="100%" role="img" aria-labelledby="timeline-${n}-t">
<title id="timeline-${n}-t">${esc(t.label)}: ${esc(summary)}</title>
<text x="0" y="44">sent by the probe</text><text x="0" y="104">received through the path</text>
<line class="lane" x1="${LEFT}" y1="40" x2="${W - 10}" y2="40"/><line class="lane" x1="${LEFT}" y1="100" x2="${W - 10}" y2="100"/>
<line class="axis" x1="${x(t.headersMs)}" y1="88" x2="${x(t.headersMs)}" y2="112"/><text x="${x(t.headersMs)}" y="126" text-anchor="${t.headersMs / last > 0.85 ? 'end' : t.headersMs / last < 0.15 ? 'start' : 'middle'}">response headers</text>
${marks}
<text x="${LEFT}" y="145">0 ms</text><text x="${W - 10}" y="145" text-anchor="end">${Math.round(last)} ms (${esc(t.end)})</text>
</svg>
<figcaption>SSE (<code>sse-unbuffered</code>), ${esc(t.label)}: ${esc(summary)}.</figcaption></figure>`;
}

/** A silent tool call: the silence it asked for, and where the stream ended (answered or cut). */
function silenceFigure(t: StreamTimeline, n: number): string {
  const silent = t.silentMs ?? 0;
  const last = Math.max(silent, t.endMs, 1) * 1.05;
  const x = (ms: number) => (LEFT + (Math.max(0, ms) / last) * (W - LEFT - 20)).toFixed(1);
  const survived = t.end === 'complete';
  const summary = survived
    ? `answered after ${(t.endMs / 1000).toFixed(1)} s: the silence survived`
    : `${t.end} after ${(t.endMs / 1000).toFixed(1)} s of a ${(silent / 1000).toFixed(0)} s silence`;
  const beats = t.heartbeatsMs
    .map(
      (b) =>
        `<line class="beat" x1="${x(b)}" y1="30" x2="${x(b)}" y2="62"><title>heartbeat at ${Math.round(b)} ms</title></line>`,
    )
    .join('');
  return `<figure id="timeline-${n}" data-check="${t.check}" data-survived="${survived}">
<svg viewBox="0 0 ${W} 100" width="100%" role="img" aria-labelledby="timeline-${n}-t">
<title id="timeline-${n}-t">${esc(t.label)}: ${esc(summary)}</title>
<text x="0" y="50">${esc(t.label)}</text>
<rect class="silence" x="${LEFT}" y="36" width="${(Number(x(silent)) - LEFT).toFixed(1)}" height="20"><title>the tool stays silent ${silent} ms</title></rect>
<rect class="${survived ? 'alive' : 'cut'}" x="${x(t.endMs)}" y="30" width="6" height="32" data-end-ms="${Math.round(t.endMs)}"><title>${esc(summary)}</title></rect>
${beats}
<text x="${LEFT}" y="85">0 s</text><text x="${W - 10}" y="85" text-anchor="end">${(last / 1000).toFixed(0)} s</text>
</svg>
<figcaption>Idle (<code>idle-survival</code>): ${esc(summary)}${t.heartbeatsMs.length ? `; ${t.heartbeatsMs.length} heartbeat(s) seen` : ''}.</figcaption></figure>`;
}

/** The page for a URL the doctor could not examine at all (exit 3): what it tried and why it stopped. */
export function renderFatalHtml(target: string, message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>sluice doctor: ${esc(target)}</title><style>${CSS}</style></head>
<body><header><h1>sluice doctor</h1><p class="meta"><strong>${esc(target)}</strong> could not be examined.</p></header>
<main><div class="fix" role="alert"><dl><dt>Why</dt><dd>${esc(message)}</dd></dl></div>
<p>No check ran. Fix what stops the doctor reaching an MCP server at this URL and run it again.</p></main></body></html>
`;
}
