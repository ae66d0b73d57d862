// What the doctor reports: the stable check ids in the order they are printed, one result per
// check, and the report as a whole.
import { FIXES, PLATFORMS, type Fix } from './fixes.ts';

export const CHECKS = {
  'no-redirect': 'POST to the MCP URL is answered, not redirected',
  'session-id-roundtrip': 'Mcp-Session-Id reaches the client and comes back',
  'notification-202': 'Notifications are answered 202 Accepted',
  'protocol-version-forwarded': 'MCP-Protocol-Version reaches the server',
  'authorization-forwarded': 'Authorization reaches the server',
  'accept-forwarded': 'Accept keeps application/json and text/event-stream',
  'host-forwarded': 'The public Host reaches the server',
  'mcp-param-forwarded': 'Mcp-Method, Mcp-Name and Mcp-Param-* reach the server (2026-07-28)',
  'sse-unbuffered': 'SSE events arrive as they are sent',
  'sse-compression': 'SSE responses are not compressed',
  'idle-survival': 'Silent streams survive long tool calls',
  'resume': 'A cut stream resumes with Last-Event-ID',
  'last-event-id-forwarded': 'Last-Event-ID reaches the server',
  'affinity': "Every request of a session reaches the replica that holds it",
  'unknown-session-404': 'An unknown session is answered 404',
  'method-405': '405 Method Not Allowed passes through',
  'error-body-intact': 'JSON-RPC error bodies pass unchanged',
  'cors-preflight': 'The CORS preflight allows the MCP request headers',
  'cors-expose-session-id': 'CORS exposes Mcp-Session-Id and WWW-Authenticate',
  'oauth-discovery': 'OAuth discovery works through the path (challenge, protected-resource metadata)',
  'body-limit': 'Tool calls of 1 MiB and 4 MiB get through',
} as const;

export type CheckId = keyof typeof CHECKS;
export type Status = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  id: CheckId;
  title: string;
  status: Status;
  detail: string;
  /** The likely cause and the fix per platform; null when nothing is to be fixed. */
  fix: Fix | null;
}

export interface Report {
  target: string;
  /** The probe's instance names when the target is `sluice probe`, else empty. */
  probeInstances: string[];
  quick: boolean;
  durationMs: number;
  checks: CheckResult[];
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
  const what = report.probeInstances.length ? `sluice probe ${report.probeInstances.join(', ')}` : 'an MCP server (not the probe: checks that need it are skipped)';
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
  return `${JSON.stringify({ target: report.target, probeInstances: report.probeInstances, quick: report.quick, durationMs: report.durationMs, checks: report.checks }, null, 2)}\n`;
}
