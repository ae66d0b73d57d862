// User-registered upstreams: a tenant's MCP server URL under a public route
// <pathPrefix>/<tenant>/<name>. Kept in a JSON file, rewritten atomically (temp file + rename)
// on every change, so registrations survive restarts and a crash never leaves half a file.
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { routeSchema, type Config, type RouteConfig } from '../config/schema.ts';

export interface Registration {
  tenant: string;
  name: string;
  url: string;
  createdAt: string;
}

export class RegistryError extends Error {}

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

export class Registry {
  private readonly file: string;
  private entries: Registration[];
  private saving: Promise<void> = Promise.resolve();

  private constructor(file: string, entries: Registration[]) {
    this.file = file;
    this.entries = entries;
  }

  /** Read the file again: another process (a worker under `--workers`) changed it. */
  async reread(): Promise<void> {
    this.entries = (await Registry.load(this.file)).entries;
  }

  /** A missing file is an empty registry; an unreadable or malformed one is an error (never silently emptied). */
  static async load(file: string): Promise<Registry> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return new Registry(file, []);
      throw new RegistryError(`cannot read ${file}: ${(err as Error).message}`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new RegistryError(`${file} is not valid JSON`);
    }
    const list = (data as { upstreams?: unknown }).upstreams;
    if (!Array.isArray(list)) throw new RegistryError(`${file}: no "upstreams" list`);
    const entries: Registration[] = [];
    for (const e of list as Record<string, unknown>[]) {
      if (
        typeof e?.['tenant'] !== 'string' ||
        typeof e['name'] !== 'string' ||
        typeof e['url'] !== 'string' ||
        !SLUG.test(e['tenant']) ||
        !SLUG.test(e['name'])
      ) {
        throw new RegistryError(`${file}: malformed entry ${JSON.stringify(e).slice(0, 200)}`);
      }
      entries.push({ tenant: e['tenant'], name: e['name'], url: e['url'], createdAt: String(e['createdAt'] ?? '') });
    }
    return new Registry(file, entries);
  }

  list(tenant: string): Registration[] {
    return this.entries.filter((e) => e.tenant === tenant);
  }

  all(): readonly Registration[] {
    return this.entries;
  }

  find(tenant: string, name: string): Registration | undefined {
    return this.entries.find((e) => e.tenant === tenant && e.name === name);
  }

  /**
   * Adds `r` unless its tenant already has that name or `maxPerTenant` entries: the checks and the
   * change are one synchronous step (no await between them), so concurrent registrations can
   * neither duplicate a name nor pass the limit. The entry is live at once; the promise is its write.
   */
  add(r: Registration, maxPerTenant: number): { refused: 'exists' | 'limit' } | { saved: Promise<void> } {
    if (this.find(r.tenant, r.name)) return { refused: 'exists' };
    if (this.list(r.tenant).length >= maxPerTenant) return { refused: 'limit' };
    this.entries.push(r);
    return { saved: this.save() };
  }

  /** Removes an entry at once (its route stops with the next rebuild); the promise is its write (undefined: none). */
  remove(tenant: string, name: string): Promise<void> | undefined {
    const i = this.entries.findIndex((e) => e.tenant === tenant && e.name === name);
    if (i === -1) return undefined;
    this.entries.splice(i, 1);
    return this.save();
  }

  /** Writes are serialized; each writes the whole current list. */
  private save(): Promise<void> {
    const next = this.saving.then(async () => {
      const tmp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(tmp, `${JSON.stringify({ version: 1, upstreams: this.entries }, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, this.file);
    });
    this.saving = next.catch(() => undefined);
    return next;
  }
}

/** The public path of a registration. */
export function registeredPath(config: Config, tenant: string, name: string): string {
  const prefix = config.registrations.pathPrefix === '/' ? '' : config.registrations.pathPrefix;
  return `${prefix}/${tenant}/${name}`;
}

/**
 * A registration as a route: the strict address policy always, the operator's https rule and
 * allow lists added; no active health checks (a tenant's server is one replica, never ejected:
 * a dead one costs a refused connect per request, answered 502/503 at once).
 */
export function registeredRoute(config: Config, r: Registration): RouteConfig {
  const e = config.registrations.egress;
  return routeSchema.parse({
    path: registeredPath(config, r.tenant, r.name),
    upstream: r.url,
    healthCheck: { interval: 0 },
    egress: { strict: true, requireHttps: e.requireHttps, allow: e.allow, allowHosts: e.allowHosts },
  });
}
