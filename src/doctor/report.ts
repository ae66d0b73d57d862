// What the doctor reports: the stable check ids in the order they are printed, one result per
// check, and the report as a whole.
import { CHECKS, type CheckId } from './check-ids.ts';
import { FIXES, PLATFORMS, type Fix } from './fixes.ts';

export { CHECKS, type CheckId } from './check-ids.ts';

export type Status = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  id: CheckId;
  title: string;
  status: Status;
  detail: string;
  /** The likely cause and the fix per platform; null when nothing is to be fixed. */
  fix: Fix | null;
}

/**
 * One stream as the probe sent it and as the doctor received it through the path, for the HTML
 * report's picture. Times are ms after the request was sent, on the doctor's clock: a sent time is
 * the probe's stamp shifted by the clock offset and the fastest event's transit.
 */
export interface StreamTimeline {
  check: 'sse-unbuffered' | 'idle-survival';
  label: string;
  headersMs: number;
  endMs: number;
  /** complete (answered), cut, timeout or stopped. */
  end: string;
  events: { sentMs: number; receivedMs: number }[];
  /** A silent tool call's silence (ms). */
  silentMs?: number;
  heartbeatsMs: number[];
}

export interface Report {
  target: string;
  /** The probe's instance names when the target is `sluice probe`, else empty. */
  probeInstances: string[];
  quick: boolean;
  durationMs: number;
  checks: CheckResult[];
  /** The streams the SSE and idle checks watched (absent when none ran). */
  timelines?: StreamTimeline[];
}

export function result(id: CheckId, status: Status, detail: string): CheckResult {
  return { id, title: CHECKS[id], status, detail, fix: status === 'fail' || status === 'warn' ? FIXES[id] : null };
}

/** Puts results in catalogue order; a check that produced nothing is reported as skipped. */
export function ordered(results: CheckResult[]): CheckResult[] {
  const byId = new Map(results.map((r) => [r.id, r]));
  return (Object.keys(CHECKS) as CheckId[]).map((id) => byId.get(id) ?? result(id, 'skip', 'not run'));
}

export function failed(report: Report): boolean {
  return report.checks.some((c) => c.status === 'fail');
}

const LABEL: Record<Status, string> = { pass: 'PASS', fail: 'FAIL', warn: 'WARN', skip: 'SKIP' };
const COLOR: Record<Status, string> = { pass: '\x1b[32m', fail: '\x1b[31m', warn: '\x1b[33m', skip: '\x1b[2m' };

function summary(report: Report): string {
  const n = (s: Status) => report.checks.filter((c) => c.status === s).length;
  return `${report.checks.length} checks: ${n('pass')} passed, ${n('fail')} failed, ${n('warn')} warnings, ${n('skip')} skipped (${(report.durationMs / 1000).toFixed(1)} s)`;
}

function subject(report: Report): string {
  const what = report.probeInstances.length
    ? `sluice probe ${report.probeInstances.join(', ')}`
    : 'an MCP server (not the probe: checks that need it are skipped)';
  return `${report.target} — ${what}${report.quick ? ', quick run' : ''}`;
}

export function renderTerminal(report: Report, color: boolean): string {
  const paint = (s: Status, text: string) => (color ? `${COLOR[s]}${text}\x1b[0m` : text);
  const width = Math.max(...report.checks.map((c) => c.id.length));
  const lines = [`sluice doctor: ${subject(report)}`, ''];
  for (const c of report.checks) {
    lines.push(`  ${paint(c.status, LABEL[c.status])}  ${c.id.padEnd(width)}  ${c.detail}`);
    if (c.fix) {
      const pad = ' '.repeat(width + 10);
      lines.push(`${pad}cause: ${c.fix.cause}`);
      for (const p of PLATFORMS) lines.push(`${pad}${p.label}: ${c.fix[p.key]}`);
    }
  }
  lines.push('', summary(report), '');
  return lines.join('\n');
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(report: Report): string {
  const lines = [`# sluice doctor: ${cell(subject(report))}`, '', '| Status | Check | Detail |', '|---|---|---|'];
  for (const c of report.checks) lines.push(`| ${LABEL[c.status]} | \`${c.id}\` | ${cell(c.detail)} |`);
  lines.push('', summary(report));
  const toFix = report.checks.filter((c) => c.fix);
  if (toFix.length) {
    lines.push('', '## How to fix');
    for (const c of toFix) {
      lines.push('', `### \`${c.id}\` (${LABEL[c.status]})`, '', `Likely cause: ${c.fix!.cause}`, '');
      for (const p of PLATFORMS) lines.push(`- **${p.label}**: ${cell(c.fix![p.key])}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function renderJson(report: Report): string {
  return `${JSON.stringify({ target: report.target, probeInstances: report.probeInstances, quick: report.quick, durationMs: report.durationMs, checks: report.checks, timelines: report.timelines ?? [] }, null, 2)}\n`;
}
