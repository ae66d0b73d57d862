// Config from a YAML file (with ${ENV} interpolation) or from quick-start flags; validated and frozen.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config, type ConfigInput } from './schema.ts';

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: string[]) {
    super(`invalid config (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out || '(top level)';
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    if (i.code === 'unrecognized_keys')
      return `${formatPath(i.path)}: unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    return `${formatPath(i.path)}: ${i.message}`;
  });
}

/** Replace ${NAME} (and ${NAME:-default}) in string values; a missing variable is an error. */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, problems: string[], path: string): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback?: string) => {
      const v = env[name] ?? fallback;
      if (v === undefined) problems.push(`${path || '(top level)'}: environment variable ${name} is not set`);
      return v ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, env, problems, path ? `${path}.${k}` : k)]),
    );
  }
  return value;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const inner of Object.values(v)) deepFreeze(inner);
    Object.freeze(v);
  }
  return v;
}

export function buildConfig(input: unknown, source: string): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(source, formatIssues(result.error.issues));
  return deepFreeze(result.data);
}

export function parseConfigText(text: string, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0)
    throw new ConfigError(
      source,
      doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`),
    );
  const problems: string[] = [];
  const data = interpolate(doc.toJS() ?? {}, env, problems, '');
  if (problems.length > 0) throw new ConfigError(source, problems);
  return buildConfig(data, source);
}

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read file: ${(err as Error).message}`]);
  }
  return parseConfigText(text, file, env);
}

function hostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  if (!m) throw new ConfigError(flag, [`${flag}: "${text}" is not host:port`]);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}

/**
 * `sluice serve --listen host:port --upstream URL [--upstream URL …] [--path /mcp] [--allow-origin O …]` as a config:
 * one route, one replica per --upstream.
 */
export function quickConfig(opts: {
  listen?: string;
  upstream: string | string[] | { stdio: { command: string; args: string[] } };
  path?: string;
  allowOrigin?: string[];
  allowHost?: string[];
  admin?: string;
  logPayloads?: boolean;
  bridge?: boolean;
}): Config {
  const input: ConfigInput = {
    routes: [
      {
        path: opts.path ?? '/mcp',
        upstream: opts.upstream,
        ...(opts.allowOrigin?.length ? { cors: { allowOrigins: opts.allowOrigin } } : {}),
        ...(opts.logPayloads ? { logPayloads: { enabled: true } } : {}),
        ...(opts.bridge ? { bridge: 'auto' as const } : {}),
      },
    ],
  };
  if (opts.listen || opts.allowHost?.length)
    input.listen = [
      {
        ...hostPort('--listen', opts.listen ?? '127.0.0.1:8080'),
        ...(opts.allowHost?.length ? { allowHosts: opts.allowHost } : {}),
      },
    ];
  if (opts.admin) input.admin = { listen: hostPort('--admin', opts.admin) };
  return buildConfig(input, 'command line');
}
