// The sluice command line. Exit codes: 0 ok, 1 bad config or runtime failure, 2 bad usage.
import cluster from 'node:cluster';
import { accessSync, constants, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, quickConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { maskedArgs } from '../config/masked.ts';
import { createLogger } from '../observability/logger.ts';
import { startGateway, type Gateway } from '../app.ts';
import { announceWorker, runPrimary, serveAsWorker, workerCount } from '../workers.ts';
import { PROCESS } from '../broker/bridge-common.ts';
import { checkAuthSecrets } from '../config/checks.ts';
import { checkRouteUrls } from '../routing/route-checks.ts';
import { KeyRingError } from '../session/key-ring.ts';
import { TlsConfigError } from '../transport/tls-listener.ts';
import { asksHelp, commandHelp, HELP } from './help.ts';
import { runCheckUpstream } from './check-upstream.ts';
import { runConfig } from './config-gen.ts';
import { runSessions } from './sessions.ts';
import { runAuth } from './auth.ts';

function usage(message: string): never {
  process.stderr.write(`sluice: ${message}\n\n${HELP}`);
  process.exit(2);
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function printListening(gw: Pick<Gateway, 'addresses' | 'adminAddress'>, config: Config): void {
  gw.addresses.forEach((a, i) => {
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    const scheme = config.listen[i]?.tls ? 'https' : 'http';
    for (const r of config.routes) {
      const pub = `${scheme}://${host}:${a.port}${r.path}`;
      const to = r.stdio
        ? `stdio: ${[r.stdio.command, ...maskedArgs(r.stdio.args)].join(' ')}`
        : r.servers
          ? `federation: ${Object.keys(r.servers).join(', ')}`
          : r.upstream.map((u) => u.url).join(', ');
      process.stderr.write(`sluice: ${pub} -> ${to}\n`);
      if (r.stdio) process.stderr.write(`sluice: HTTP+SSE clients connect to ${pub.replace(/\/+$/, '')}/sse\n`);
      const hint = sseHint(pub, r.upstream[0]?.url);
      if (hint) process.stderr.write(`sluice: ${hint}\n`);
    }
  });
  const admin = gw.adminAddress;
  if (admin)
    process.stderr.write(
      `sluice: admin at http://${admin.family === 'IPv6' ? `[${admin.address}]` : admin.address}:${admin.port} (/healthz, /readyz, /metrics)\n`,
    );
}

/**
 * Where HTTP+SSE (2024-11-05) clients connect, said where users look: with the server's base URL
 * as the upstream, `GET <public>/sse` reaches its `/sse` and its posts (`/messages`) stay inside
 * the route. An upstream ending in `/sse` cannot work: the server's post path is beside it.
 */
export function sseHint(publicUrl: string, upstream: string | undefined): string | undefined {
  if (upstream === undefined) return undefined;
  const url = new URL(upstream);
  const path = url.pathname.replace(/\/+$/, '');
  const pub = publicUrl.replace(/\/+$/, '');
  if (path === '') return `HTTP+SSE clients connect to ${pub}/sse (the server's /sse)`;
  if (!path.endsWith('/sse')) return undefined;
  url.pathname = path.slice(0, -4) || '/';
  return (
    'warning: the upstream ends in /sse, but an HTTP+SSE server takes its posts beside it (/messages), ' +
    `outside this route: give the server's base URL (${url.href}) and connect clients to ${pub}/sse`
  );
}

/**
 * SIGHUP re-reads the config file; a bad file is logged and the running config kept. In the quick
 * form (no file) there is nothing to re-read: the signal is logged and nothing else happens (its
 * default action would end Sluice and every session it keeps).
 */
function reloadOnHangup(gw: Gateway, file: string | undefined): void {
  process.on('SIGHUP', () => {
    if (file === undefined) {
      gw.ctx.log.info('SIGHUP: nothing to reload (started without --config); sessions go on');
      return;
    }
    loadConfigFile(file)
      .then((next) => gw.reload(next))
      .catch((err: unknown) =>
        gw.ctx.log.error(
          { problems: (err as ConfigError).problems ?? [(err as Error).message] },
          'config reload failed; kept the running config',
        ),
      );
  });
}

export function handleSignals(gw: Gateway): void {
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    gw.ctx.log.info({ signal: sig }, 'shutting down');
    gw.shutdown().then(
      () => {
        gw.ctx.log.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        gw.ctx.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function serve(argv: string[]): Promise<void> {
  // `--stdio -- COMMAND ARGS...`: everything after `--` is the stdio server's argv, as written.
  const dashes = argv.indexOf('--');
  const args = dashes === -1 ? argv : argv.slice(0, dashes);
  const command = dashes === -1 ? [] : argv.slice(dashes + 1);
  const { values } = parseArgs({
    args,
    options: {
      stdio: { type: 'boolean' },
      config: { type: 'string', short: 'c' },
      listen: { type: 'string' },
      upstream: { type: 'string', multiple: true },
      path: { type: 'string' },
      'allow-origin': { type: 'string', multiple: true },
      admin: { type: 'string' },
      'log-payloads': { type: 'boolean' },
      bridge: { type: 'boolean' },
      'allow-host': { type: 'string', multiple: true },
      workers: { type: 'string' },
    },
    strict: true,
  });
  let config: Config;
  if (values.config) {
    if (
      values.upstream ||
      values.stdio ||
      values.listen ||
      values.path ||
      values['allow-origin'] ||
      values.admin ||
      values['log-payloads'] ||
      values.bridge ||
      values['allow-host']
    )
      usage(
        '--config cannot be combined with the quick-form flags (--listen, --upstream, --path, --allow-origin, --allow-host, --admin, --log-payloads, --bridge)',
      );
    config = await loadConfigFile(values.config);
  } else {
    if (values.stdio && values.upstream) usage('--stdio and --upstream are two kinds of route: give one');
    if (values.stdio && command.length === 0)
      usage('--stdio needs the server after --: sluice serve --stdio -- npx -y SERVER');
    if (!values.stdio && dashes !== -1) usage('arguments after -- are the command of --stdio');
    if (!values.upstream && !values.stdio) usage('serve needs --upstream URL, --stdio -- COMMAND, or --config FILE');
    config = quickConfig({
      upstream: values.stdio
        ? { stdio: { command: command[0] as string, args: command.slice(1) } }
        : (values.upstream as string[]),
      listen: values.listen,
      path: values.path,
      allowOrigin: values['allow-origin'],
      admin: values.admin,
      logPayloads: values['log-payloads'],
      bridge: values.bridge,
      allowHost: values['allow-host'],
    });
  }
  const workers = workerCount(values.workers === undefined ? config.workers : workersFlag(values.workers));
  if (workers > 1 && cluster.isPrimary) {
    const log = createLogger(config.logging.level);
    await runPrimary({
      config,
      workers,
      log,
      listening: (addresses, admin) => printListening({ addresses, adminAddress: admin }, config),
    });
    return;
  }
  if (cluster.isWorker) {
    const id = process.env['SLUICE_WORKER_ID'] ?? '0';
    // Named by pid too: a worker killed outright leaves its socket file behind.
    const socket = join(process.env['SLUICE_WORKER_DIR'] ?? tmpdir(), `worker-${id}-${process.pid}.sock`);
    const log = createLogger(config.logging.level).child({ worker: Number(id) });
    const gw = await startGateway(config, log, { worker: { id: Number(id), socketPath: socket } });
    serveAsWorker(gw);
    handleSignals(gw);
    reloadOnHangup(gw, values.config);
    announceWorker(gw, PROCESS, socket);
    return;
  }
  const log = createLogger(config.logging.level);
  const gw = await startGateway(config, log);
  handleSignals(gw);
  reloadOnHangup(gw, values.config);
  printListening(gw, config);
}

function workersFlag(v: string): number | 'auto' {
  if (v === 'auto') return 'auto';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) usage('--workers takes a number from 1 to 256, or auto');
  return n;
}

async function validate(args: string[]): Promise<void> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const file = positionals[0];
  if (!file || positionals.length > 1) usage('validate needs exactly one config file');
  const config = await loadConfigFile(file);
  checkRouteUrls(config);
  checkAuthSecrets(config);
  for (const r of config.routes)
    if (r.stdio && !onPath(r.stdio.command))
      process.stderr.write(
        `${file}: warning: route ${r.path}: ${r.stdio.command}: not found on PATH (or not executable)\n`,
      );
  process.stdout.write(`${file}: ok (${config.listen.length} listener(s), ${config.routes.length} route(s))\n`);
}

/** Would `command` run here: a path that is executable, or a name found on PATH? */
function onPath(command: string): boolean {
  const runs = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (command.includes('/')) return runs(command);
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => dir !== '' && runs(join(dir, command)));
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  // `sluice COMMAND --help`: that command's help, whatever else is on the line.
  const help = command !== undefined && asksHelp(rest) ? commandHelp(command) : undefined;
  if (help) {
    process.stdout.write(help);
    return;
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'validate':
        return await validate(rest);
      case 'sessions':
        return runSessions(rest, usage);
      case 'auth':
        return await runAuth(rest, usage);
      case 'probe':
        // Loaded on demand, like the demo: it brings both MCP SDKs.
        return await (await import('./probe.ts')).runProbe(rest, usage);
      case 'config':
        return runConfig(rest, usage);
      case 'doctor':
        return await (await import('./doctor.ts')).runDoctorCommand(rest, usage);
      case 'check-upstream':
        return await runCheckUpstream(rest, usage);
      case 'demo':
        // Loaded on demand: the demo brings both MCP SDKs, which `serve` has no use for
        // (about 60 MB of resident memory in every gateway process otherwise).
        return await (await import('./demo.ts')).runDemo(rest);
      case '--version':
      case '-v':
        process.stdout.write(`${version()}\n`);
        return;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(HELP);
        return;
      default:
        usage(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice: ${err.message}\n`);
      process.exit(1);
    }
    if (err instanceof TlsConfigError) {
      process.stderr.write(`sluice: listen[].tls: ${err.message}\n`);
      process.exit(1);
    }
    if (err instanceof KeyRingError) {
      process.stderr.write(`sluice: SLUICE_SESSION_KEYS: ${err.message}\n`);
      process.exit(1);
    }
    if (
      (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
      (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE'
    ) {
      usage((err as Error).message);
    }
    if ((err as { code?: string }).code === 'EADDRINUSE' || (err as { code?: string }).code === 'EACCES') {
      process.stderr.write(`sluice: cannot listen: ${(err as Error).message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

await main(process.argv.slice(2));
