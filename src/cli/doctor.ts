// `sluice doctor <url> [--quick] [--json | --markdown] [--html FILE [--platform P]] [--idle S[,S…]]
// [--header "Name: value"]… [--origin O] [--sessions N] [--insecure] [--ca FILE]`.
// Exit codes: 0 no check failed, 1 a check failed, 2 bad usage, 3 the target could not be examined.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { PLATFORMS } from '../doctor/fixes.ts';
import { renderFatalHtml, renderHtml, type Platform } from '../doctor/report-html.ts';
import { DoctorFatal, runDoctor } from '../doctor/run-doctor.ts';
import { failed, renderJson, renderMarkdown, renderTerminal } from '../doctor/report.ts';

function headerPairs(values: string[], usage: (m: string) => never): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf(':');
    const name = v.slice(0, i).trim();
    if (i <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) usage(`--header "${v}" is not "Name: value"`);
    out[name.toLowerCase()] = v.slice(i + 1).trim();
  }
  return out;
}

export async function runDoctorCommand(args: string[], usage: (message: string) => never): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      json: { type: 'boolean' },
      markdown: { type: 'boolean' },
      idle: { type: 'string' },
      header: { type: 'string', multiple: true },
      origin: { type: 'string' },
      sessions: { type: 'string' },
      insecure: { type: 'boolean' },
      ca: { type: 'string' },
      html: { type: 'string' },
      platform: { type: 'string' },
    },
  });
  if (positionals.length !== 1) usage('doctor needs exactly one URL: the public MCP endpoint');
  if (values.json && values.markdown) usage('--json and --markdown exclude each other');
  let idleSeconds: number[] | undefined;
  if (values.idle !== undefined) {
    idleSeconds = values.idle.split(',').map((x) => Number(x.trim()));
    if (idleSeconds.some((n) => !Number.isInteger(n) || n < 1 || n > 3600))
      usage(`--idle "${values.idle}": whole seconds from 1 to 3600, comma-separated`);
  }
  const sessions = values.sessions === undefined ? undefined : Number(values.sessions);
  if (sessions !== undefined && (!Number.isInteger(sessions) || sessions < 1 || sessions > 100))
    usage(`--sessions "${values.sessions}": 1 to 100`);
  const platforms = PLATFORMS.map((p) => p.key as string);
  if (values.platform !== undefined && !platforms.includes(values.platform))
    usage(`--platform "${values.platform}": one of ${platforms.join(', ')}`);
  if (values.platform !== undefined && values.html === undefined) usage('--platform chooses the fixes of --html FILE');
  if (values.html === '') usage('--html needs a file name');
  if (values.origin !== undefined && !/^https?:\/\/[^\s/]+$/.test(values.origin))
    usage(`--origin "${values.origin}" is not an origin (scheme://host[:port])`);
  try {
    const report = await runDoctor(positionals[0]!, {
      quick: values.quick ?? false,
      headers: headerPairs(values.header ?? [], usage),
      insecure: values.insecure ?? false,
      ...(idleSeconds ? { idleSeconds } : {}),
      ...(values.origin ? { origin: values.origin } : {}),
      ...(sessions ? { sessions } : {}),
      ...(values.ca ? { caFile: values.ca } : {}),
    });
    process.stdout.write(
      values.json
        ? renderJson(report)
        : values.markdown
          ? renderMarkdown(report)
          : renderTerminal(report, process.stdout.isTTY === true && !process.env['NO_COLOR']),
    );
    if (values.html !== undefined) {
      try {
        writeFileSync(values.html, renderHtml(report, values.platform as Platform | undefined));
      } catch (err) {
        process.stderr.write(`sluice doctor: cannot write ${values.html}: ${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      process.stderr.write(`sluice doctor: wrote ${values.html}\n`);
    }
    process.exitCode = failed(report) ? 1 : 0;
  } catch (err) {
    if (err instanceof DoctorFatal) {
      process.stderr.write(`sluice doctor: ${err.message}\n`);
      if (values.html !== undefined) {
        try {
          writeFileSync(values.html, renderFatalHtml(positionals[0]!, err.message));
        } catch {
          // The one line above already says what went wrong; a page that cannot be written adds nothing.
        }
      }
      process.exitCode = 3;
      return;
    }
    throw err;
  }
}
