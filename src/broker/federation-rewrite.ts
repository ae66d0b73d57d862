// The names inside federated messages, each way: what the client sends a server (its own names),
// and what a server answers or announces (the client's names). Only the fields that name a tool,
// prompt, resource or task change; everything else passes as the server wrote it.
import type { Namespace, Naming } from './federation-names.ts';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Which methods name their target, and by what (the owner of the request is found from it). */
export const TARGET: Readonly<Record<string, 'name' | 'uri' | 'ref' | 'task'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'resources/subscribe': 'uri',
  'resources/unsubscribe': 'uri',
  'completion/complete': 'ref',
  'tasks/get': 'task',
  'tasks/result': 'task',
  'tasks/cancel': 'task',
};

/** Lists merged over every server: the result's array and the field of each entry that is namespaced. */
export const LISTS: Readonly<Record<string, { key: string; field: string; kind: 'name' | 'uri' }>> = {
  'tools/list': { key: 'tools', field: 'name', kind: 'name' },
  'prompts/list': { key: 'prompts', field: 'name', kind: 'name' },
  'resources/list': { key: 'resources', field: 'uri', kind: 'uri' },
  'resources/templates/list': { key: 'resourceTemplates', field: 'uriTemplate', kind: 'uri' },
  'tasks/list': { key: 'tasks', field: 'taskId', kind: 'name' },
};

export interface Routed<M extends Naming> {
  member: M;
  params: Obj | undefined;
}

/** The server a request is for, and its params in that server's own names; undefined: not a targeted method. */
export function routeRequest<M extends Naming>(
  ns: Namespace<M>,
  method: string,
  params: Obj | undefined,
): Routed<M> | undefined {
  const target = TARGET[method];
  if (!target) return undefined;
  const p = { ...(params ?? {}) };
  if (target === 'name') {
    const hit = ns.requireName(p['name'], method.startsWith('tools/') ? 'tool' : 'prompt');
    return { member: hit.member, params: { ...p, name: hit.own } };
  }
  if (target === 'uri') {
    const hit = ns.requireUri(p['uri']);
    return { member: hit.member, params: { ...p, uri: hit.own } };
  }
  if (target === 'task') {
    const hit = ns.requireName(p['taskId'], 'task');
    return { member: hit.member, params: { ...p, taskId: hit.own } };
  }
  const ref = isObj(p['ref']) ? p['ref'] : {};
  if (ref['type'] === 'ref/resource') {
    const hit = ns.requireUri(ref['uri']);
    return { member: hit.member, params: { ...p, ref: { ...ref, uri: hit.own } } };
  }
  const hit = ns.requireName(ref['name'], 'prompt');
  return { member: hit.member, params: { ...p, ref: { ...ref, name: hit.own } } };
}

/** A server's result in the client's names. */
export function clientResult<M extends Naming>(ns: Namespace<M>, m: M, method: string, result: unknown): unknown {
  if (!isObj(result) || m.prefix === '') return result;
  const out: Obj = { ...result };
  const list = LISTS[method];
  if (list && Array.isArray(out[list.key]))
    out[list.key] = (out[list.key] as unknown[]).map((e) => entry(ns, m, e, list.field, list.kind));
  if (Array.isArray(out['content'])) out['content'] = (out['content'] as unknown[]).map((c) => content(ns, m, c));
  if (Array.isArray(out['contents']))
    out['contents'] = (out['contents'] as unknown[]).map((c) => entry(ns, m, c, 'uri', 'uri'));
  if (Array.isArray(out['messages']))
    out['messages'] = (out['messages'] as unknown[]).map((msg) =>
      isObj(msg) ? { ...msg, content: content(ns, m, msg['content']) } : msg,
    );
  if (isObj(out['task'])) out['task'] = entry(ns, m, out['task'], 'taskId', 'name');
  if (typeof out['taskId'] === 'string') out['taskId'] = ns.name(m, out['taskId']);
  return out;
}

/** A server's notification params in the client's names. */
export function clientNotification<M extends Naming>(
  ns: Namespace<M>,
  m: M,
  method: string,
  params: Obj | undefined,
): Obj | undefined {
  if (!params || m.prefix === '') return params;
  if (method === 'notifications/resources/updated' && typeof params['uri'] === 'string')
    return { ...params, uri: ns.uri(m, params['uri']) };
  if (method === 'notifications/tasks/status' && typeof params['taskId'] === 'string')
    return { ...params, taskId: ns.name(m, params['taskId']) };
  return params;
}

function entry<M extends Naming>(ns: Namespace<M>, m: M, e: unknown, field: string, kind: 'name' | 'uri'): unknown {
  if (!isObj(e) || typeof e[field] !== 'string') return e;
  return { ...e, [field]: kind === 'name' ? ns.name(m, e[field]) : ns.uri(m, e[field]) };
}

/** Embedded resources and resource links in tool results and prompt messages. */
function content<M extends Naming>(ns: Namespace<M>, m: M, c: unknown): unknown {
  if (!isObj(c)) return c;
  if (c['type'] === 'resource_link') return entry(ns, m, c, 'uri', 'uri');
  if (c['type'] === 'resource' && isObj(c['resource']))
    return { ...c, resource: entry(ns, m, c['resource'], 'uri', 'uri') };
  return c;
}
