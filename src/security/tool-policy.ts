// Per-route rules over JSON-RPC methods and tool / prompt / resource names, optionally by
// principal, scope or claim. First matching rule wins; no match takes the default. The protocol's
// own plumbing always passes (a session must be able to start and stay alive), and list methods
// pass with their results filtered to what the caller could call.
import { globMatcher, type NameMatcher } from './glob.ts';
import type { Principal } from './principal.ts';

type ClaimValue = string | number | boolean;

export interface PolicyRuleInput {
  effect: 'allow' | 'deny';
  methods?: readonly string[] | undefined;
  names?: readonly string[] | undefined;
  principals?: readonly string[] | undefined;
  scopes?: readonly string[] | undefined;
  claims?: Readonly<Record<string, ClaimValue | readonly ClaimValue[]>> | undefined;
}

export interface PolicyInput {
  default: 'allow' | 'deny';
  rules: readonly PolicyRuleInput[];
}

interface Rule {
  allow: boolean;
  methods: NameMatcher | undefined;
  names: NameMatcher | undefined;
  principals: NameMatcher | undefined;
  scopes: readonly string[];
  claims: [string, readonly ClaimValue[]][];
}

const ALWAYS = new Set(['initialize', 'ping']);

/** A list method, the array in its result, the method that uses an item, and the item's name field. */
export const LIST_METHODS: Readonly<Record<string, { key: string; use: string; field: string } | undefined>> =
  Object.assign(Object.create(null) as object, {
    'tools/list': { key: 'tools', use: 'tools/call', field: 'name' },
    'prompts/list': { key: 'prompts', use: 'prompts/get', field: 'name' },
    'resources/list': { key: 'resources', use: 'resources/read', field: 'uri' },
    'resources/templates/list': { key: 'resourceTemplates', use: 'resources/read', field: 'uriTemplate' },
  });

export class ToolPolicy {
  private readonly rules: Rule[];
  private readonly defaultAllow: boolean;
  /** No rules and default allow: nothing to check or filter. */
  readonly open: boolean;

  constructor(input: PolicyInput) {
    this.defaultAllow = input.default === 'allow';
    this.rules = input.rules.map((r) => ({
      allow: r.effect === 'allow',
      methods: r.methods ? globMatcher(r.methods) : undefined,
      names: r.names ? globMatcher(r.names) : undefined,
      principals: r.principals ? globMatcher(r.principals) : undefined,
      scopes: r.scopes ?? [],
      claims: Object.entries(r.claims ?? {}).map(([k, v]) => [
        k,
        Array.isArray(v) ? (v as ClaimValue[]) : [v as ClaimValue],
      ]),
    }));
    this.open = this.defaultAllow && this.rules.length === 0;
  }

  /** May this principal (undefined: anonymous) send a message with this method and name? */
  allows(method: string | undefined, name: string | undefined, who: Principal | undefined): boolean {
    if (
      this.open ||
      method === undefined ||
      ALWAYS.has(method) ||
      method.startsWith('notifications/') ||
      LIST_METHODS[method]
    )
      return true;
    for (const r of this.rules) if (matches(r, method, name, who)) return r.allow;
    return this.defaultAllow;
  }

  /**
   * A list result with only the items the caller could use; undefined when nothing was removed.
   * Recognised by shape (result.tools, .prompts, .resources, .resourceTemplates), so answers on
   * an HTTP+SSE stream, where the request is not at hand, are filtered too.
   */
  filterResult(result: Record<string, unknown>, who: Principal | undefined): Record<string, unknown> | undefined {
    if (this.open) return undefined;
    for (const spec of Object.values(LIST_METHODS) as { key: string; use: string; field: string }[]) {
      const out = this.filterBy(spec, result, who);
      if (out) return out;
    }
    return undefined;
  }

  private filterBy(
    spec: { key: string; use: string; field: string },
    result: Record<string, unknown>,
    who: Principal | undefined,
  ): Record<string, unknown> | undefined {
    const items = result[spec.key];
    if (!Array.isArray(items)) return undefined;
    const kept = items.filter((it: unknown) => {
      const name = typeof it === 'object' && it !== null ? (it as Record<string, unknown>)[spec.field] : undefined;
      return typeof name === 'string' && this.allows(spec.use, name, who);
    });
    return kept.length === items.length ? undefined : { ...result, [spec.key]: kept };
  }
}

function matches(r: Rule, method: string, name: string | undefined, who: Principal | undefined): boolean {
  if (r.methods && !r.methods(method)) return false;
  if (r.names && (name === undefined || !r.names(name))) return false;
  if (r.principals && (!who || !r.principals(who.id))) return false;
  if (r.scopes.length > 0 && (!who || r.scopes.some((s) => !who.scopes.has(s)))) return false;
  for (const [claim, wanted] of r.claims) {
    const have = who?.claims[claim];
    const values = Array.isArray(have) ? have : [have];
    if (!values.some((v) => wanted.includes(v as ClaimValue))) return false;
  }
  return true;
}
