// The order of the request stages lives here and only here (docs/architecture.md §3 describes each).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostOriginPolicy } from '../security/host-origin.ts';
import type { GatewayContext } from './context.ts';
import {
  newExchange,
  type DispatchedExchange,
  type Exchange,
  type ResponseStage,
  type RoutedExchange,
  type Stage,
} from './exchange.ts';
import { forwardWith } from './forward.ts';
import { handOff } from './broker-handoff.ts';
import { observeStart } from './exchange-observers.ts';
import { respondError } from './respond-error.ts';
import { arrived, closesConnection, mayCloseConnection } from './connection-order.ts';
import {
  authenticate,
  authorize,
  filterLists,
  publicChallenge,
  refuseRejectedCredential,
  serveResourceMetadata,
} from './auth-stages.ts';
import { tapPayloads } from './payload-log.ts';
import { openReplicaState, sealReplicaState } from './replica-state.ts';
import { openSessionToken, sealSessionToken, sealSseEndpoint } from './session-stages.ts';
import {
  admit,
  applyCors,
  checkHead,
  checkHostOrigin,
  classify,
  ownCorsHeaders,
  readRequestBody,
  recordAnswer,
  selectReplica,
  selectRoute,
} from './stages.ts';
import { crossResponseHeaders, refuseEncodedBody } from './upstream-headers.ts';

/**
 * What happens to an upstream answer's head, in order, before the client sees it. Each stage
 * lives beside its request-side twin; the body transforms they attach run in this order too.
 */
export const RESPONSE_STAGES: readonly ResponseStage[] = [
  recordAnswer,
  refuseRejectedCredential,
  refuseEncodedBody,
  crossResponseHeaders,
  ownCorsHeaders,
  publicChallenge,
  filterLists,
  sealSessionToken,
  sealReplicaState,
  sealSseEndpoint,
  tapPayloads,
];

/**
 * Stages after selectRoute may rely on the route (it throws when none matches), stages after
 * selectReplica on the replica and upstream target; their types say so, and this list is the one
 * place that orders them, so it is the one place that widens them back to `Stage`.
 */
const routed = (...stages: Stage<RoutedExchange>[]): Stage[] => stages as Stage[];
const dispatched = (...stages: Stage<DispatchedExchange>[]): Stage[] => stages as Stage[];

export const STAGES: readonly Stage[] = [
  checkHead,
  serveResourceMetadata,
  selectRoute,
  ...routed(
    checkHostOrigin,
    applyCors,
    authenticate,
    readRequestBody,
    classify,
    authorize,
    handOff,
    openSessionToken,
    openReplicaState,
    selectReplica,
  ),
  ...dispatched(admit, forwardWith(RESPONSE_STAGES)),
];

export function handleRequest(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  listener: HostOriginPolicy,
): void {
  // HTTP/2 names the authority :authority; every stage reads Host.
  if (req.httpVersionMajor === 2 && req.headers.host === undefined && typeof req.headers[':authority'] === 'string')
    req.headers.host = req.headers[':authority'];
  // A client that asked for its connection to close after this request: anything it pipelined
  // behind it is not run (stages.ts admit).
  if (req.httpVersionMajor === 1) {
    arrived(req);
    const connection = req.headers.connection;
    if (req.httpVersionMinor === 0) {
      if (/keep-alive/i.test(connection ?? '')) mayCloseConnection(req, res);
      else closesConnection(req);
    } else if (connection !== undefined && /close/i.test(connection)) closesConnection(req);
  }
  const ex = newExchange(ctx, req, res, listener);
  const rate = ctx.config.logging.sample;
  ex.sampled = rate >= 1 || Math.random() < rate;
  observeStart(ex);
  run(ex);
}

// Stages run synchronously until one returns a promise; only then does the exchange wait. Most
// stages are synchronous, and an await per stage is a microtask per stage per request. A stage
// that answered (a CORS preflight) ends the run.
function run(ex: Exchange, from = 0): void {
  for (let i = from; i < STAGES.length; i++) {
    if (ex.res.headersSent || ex.handedOff) return;
    let pending: void | Promise<void>;
    try {
      pending = (STAGES[i] as Stage)(ex);
    } catch (err) {
      respondError(ex, err);
      return;
    }
    if (pending) {
      pending.then(
        () => run(ex, i + 1),
        (err: unknown) => respondError(ex, err),
      );
      return;
    }
  }
}
