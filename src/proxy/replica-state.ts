// The state 2026-07-28 servers still keep on one process, carried across replicas with no shared
// store (issue 18): the requestState of a multi-round call (InputRequiredResult) and the task ids
// of the Tasks extension (SEP-2663). On a route with several replicas the upstream's value
// reaches the client only as a sealed token naming the route and the replica (session/token.ts);
// a request that carries one back goes to that replica, with the upstream's own value restored in
// the body, and in Mcp-Name for task requests. With one replica nothing is sealed. The third kind,
// subscriptions/listen, is fanned in over every replica (listen-fan-in.ts).
import { SluiceError } from '../core/errors.ts';
import { mirroredNameField } from '../core/mcp.ts';
import { encodeHeaderValue } from '../security/header-body-check.ts';
import { open, seal, TokenError, type PinKind } from '../session/token.ts';
import {
  isJsonObject,
  JsonMessageRewriter,
  swapJsonStrings,
  type JsonObject,
  type Rewritten,
  type StringSwap,
} from '../transport/json-message-rewriter.ts';
import type { Replica } from '../routing/replica-pool.ts';
import type { DispatchedExchange, ResponseStage, RoutedExchange, Stage } from './exchange.ts';
import { principalHash } from './session-stages.ts';

const NOT_OPENED = {
  'request-state': 'SLUICE_ERR_REQUEST_STATE_INVALID',
  task: 'SLUICE_ERR_TASK_NOT_FOUND',
} as const;

/** Does this route seal 2026-07-28 state? Only when a retry could land on another replica. */
export function sealsState(ex: RoutedExchange): boolean {
  return ex.era === 'stateless' && ex.route.pool.replicas.length > 1;
}

/**
 * Which sealed field a request carries back, if any: the taskId of the Tasks extension's requests
 * that name a task (tasks/get, tasks/update, tasks/cancel: the ones whose Mcp-Name is the task
 * id), else a retry's requestState. Other tasks/* methods (2025-11-25 ones such as tasks/result,
 * which 2026-07-28 servers answer -32601) pass untouched: the upstream says what they are.
 */
function carriedField(
  method: string,
): { field: 'taskId' | 'requestState'; kind: Exclude<PinKind, 'session'> } | undefined {
  if (mirroredNameField(method) === 'taskId') return { field: 'taskId', kind: 'task' };
  return method.startsWith('tasks/') ? undefined : { field: 'requestState', kind: 'request-state' };
}

/**
 * replica state: a 2026-07-28 request carrying a sealed requestState or task id goes to the
 * replica that holds it. A value that does not open (tampered, foreign, another route or
 * principal) or whose replica is gone gets the JSON-RPC error the SDK servers use for the same
 * fault, with no upstream call. On a one-replica route an unsealed value is the upstream's own.
 */
export const openReplicaState: Stage<RoutedExchange> = (ex) => {
  const body = ex.body;
  const method = ex.rpc?.method;
  if (ex.era !== 'stateless' || ex.batch || !ex.rpc?.isRequest || !body || method === undefined) return;
  const carried = carriedField(method);
  if (!carried || !body.includes(`"${carried.field}"`)) return;
  const { field, kind } = carried;
  const text = body.toString('utf8');
  const msg = JSON.parse(text) as JsonObject;
  const params = msg['params'];
  const token = isJsonObject(params) ? params[field] : undefined;
  if (!isJsonObject(params) || typeof token !== 'string') return;
  const route = ex.route;
  const claims = open(ex.ctx.sessions, kind, token, principalHash(ex));
  if (!claims || claims.route !== route.path) {
    if (route.pool.replicas.length === 1) return;
    throw new SluiceError(NOT_OPENED[kind], `${field} is not one this gateway handed out for ${route.path}`);
  }
  const owner = route.pool.owner(claims.replica);
  if (!owner) throw new SluiceError(NOT_OPENED[kind], `the replica that holds it (${claims.replica}) is gone`);
  ex.replica = owner;
  ex.pinned = kind;
  params[field] = claims.value;
  // The token swapped for the upstream's value in the text, every other byte as the client sent it.
  ex.body = Buffer.from(swapJsonStrings(text, [[token, claims.value]]) ?? JSON.stringify(msg), 'utf8');
  // The upstream checks Mcp-Name against the body, and must see its own id in both.
  if (kind === 'task') ex.upstreamName = encodeHeaderValue(claims.value);
};

const HINTS = ['"input_required"', '"taskId"', '"taskIds"'];

/**
 * The answer's twin: an upstream requestState or task id on a multi-replica 2026-07-28 route
 * reaches the client sealed, in JSON answers and SSE events alike (InputRequiredResult,
 * CreateTaskResult, tasks/* results, a tasks list, notifications/tasks, the task ids of a listen
 * acknowledgement).
 */
export const sealReplicaState: ResponseStage = (ex, head) => {
  if (!sealsState(ex) || ex.batch || head.status !== 200) return;
  head.transforms.push(stateRewriter(ex, head.replica, head.sse));
  if (!head.sse) delete head.headers['content-length'];
};

/** The body transform that seals what `replica` says in a JSON answer or an SSE stream. */
export function stateRewriter(ex: DispatchedExchange, replica: Replica, sse: boolean): JsonMessageRewriter {
  return new JsonMessageRewriter(sse, HINTS, stateSealer(ex, replica), 'seal', 'pass');
}

/** The message rewrite that seals what `replica` said; exported for the listen fan-in's per-replica streams. */
export function stateSealer(ex: DispatchedExchange, replica: Replica): (msg: JsonObject) => Rewritten | undefined {
  const principal = principalHash(ex);
  const route = ex.route.path;
  const forTasks = mirroredNameField(ex.rpc?.method ?? '') === 'taskId';

  return (msg) => {
    const swaps: StringSwap[] = [];
    const sealAs = (kind: Exclude<PinKind, 'session'>, value: string): string => {
      let token: string;
      try {
        // Task ids seal deterministically: the one task comes back in many answers, and must read the same in each.
        const issuedAt = kind === 'task' ? 0 : Math.floor(Date.now() / 1000);
        token = seal(
          ex.ctx.sessions,
          { kind, route, replica: replica.id, value, principal, issuedAt },
          kind === 'task',
        );
      } catch (err) {
        // Too long to seal: the upstream's value must not reach the client either way.
        if (err instanceof TokenError) throw new SluiceError('SLUICE_ERR_UPSTREAM_PROTOCOL', err.message);
        throw err;
      }
      swaps.push([value, token]);
      return token;
    };
    const task = (v: unknown): unknown => (typeof v === 'string' ? sealAs('task', v) : v);
    const taskIn = (o: unknown): unknown =>
      isJsonObject(o) && typeof o['taskId'] === 'string' ? { ...o, taskId: task(o['taskId']) } : o;
    const done = (m: JsonObject): Rewritten => ({ msg: m, swaps });

    const result = msg['result'];
    if (isJsonObject(result)) {
      let r = result;
      if (r['resultType'] === 'input_required' && typeof r['requestState'] === 'string')
        r = { ...r, requestState: sealAs('request-state', r['requestState']) };
      if (typeof r['taskId'] === 'string' && (r['resultType'] === 'task' || forTasks)) r = taskIn(r) as JsonObject;
      if (Array.isArray(r['tasks'])) r = { ...r, tasks: r['tasks'].map(taskIn) };
      return r === result ? undefined : done({ ...msg, result: r });
    }
    const params = msg['params'];
    if (!isJsonObject(params)) return undefined;
    if (msg['method'] === 'notifications/tasks' && typeof params['taskId'] === 'string')
      return done({ ...msg, params: taskIn(params) });
    const filter = params['notifications'];
    if (
      msg['method'] === 'notifications/subscriptions/acknowledged' &&
      isJsonObject(filter) &&
      Array.isArray(filter['taskIds'])
    )
      return done({
        ...msg,
        params: { ...params, notifications: { ...filter, taskIds: filter['taskIds'].map(task) } },
      });
    return undefined;
  };
}
