// `sluice probe`: an MCP server (official SDKs: sessionful 2025-xx, stateless 2026-07-28 and
// HTTP+SSE, via the upstream kit) built to sit behind any proxy chain and report what reached
// it, so a client on the far side (the doctor) can see through the chain. It answers any Host
// and Origin, records every request (method, target, headers, arrival time, its instance id),
// and has tools that emit timed events, stay silent, send and receive large payloads. It sends
// no `X-Accel-Buffering`, so what the doctor measures is the proxy's own buffering.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { McpServer as McpServerV1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { McpServer as McpServerV2 } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { H } from '../core/mcp.ts';
import { startUpstreamKit, type UpstreamKit } from '../demo/upstream-kit.ts';

export interface ProbeRecord {
  seq: number;
  /** Arrival, ms since the epoch. */
  at: number;
  instance: string;
  method: string;
  target: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface Probe {
  kit: UpstreamKit;
  url: string;
  instance: string;
  records: ProbeRecord[];
  close(): Promise<void>;
}

const MAX_RECORDS = 10_000;
const MAX_LISTED = 50;
const MARKER_HEADER = H.doctorMarker;
const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new Error('cancelled'))), { once: true });
  });

const SHAPES = {
  probe_info: { description: 'Which probe instance answered, and the HTTP headers this call arrived with.', input: {} },
  emit_events: {
    description: 'Sends `count` progress notifications `intervalMs` apart; each message is {"i", "sentAt"} (ms epoch).',
    input: { count: z.number().int().min(1).max(100), intervalMs: z.number().int().min(0).max(60_000) },
  },
  stay_silent: {
    description: 'Sends nothing for `ms`, then answers.',
    input: { ms: z.number().int().min(0).max(600_000) },
  },
  large_payload: {
    description: 'Answers with `bytes` characters.',
    input: {
      bytes: z
        .number()
        .int()
        .min(0)
        .max(16 * 1024 * 1024),
    },
  },
  receive: { description: 'Says how many characters of `data` arrived.', input: { data: z.string() } },
  probe_requests: {
    description: `The recorded requests (newest ${MAX_LISTED}) whose ${MARKER_HEADER} header equals \`marker\`: what reached this instance, e.g. a resume GET.`,
    input: { marker: z.string().min(1).max(200) },
  },
} as const;

type Env = {
  headers: Record<string, unknown> | undefined;
  progress: (progress: number, total: number, message: string) => Promise<void>;
  signal: AbortSignal;
};

function run(
  instance: string,
  records: ProbeRecord[],
  name: keyof typeof SHAPES,
  args: Record<string, unknown>,
  env: Env,
): Promise<string> | string {
  switch (name) {
    case 'probe_requests':
      return JSON.stringify({
        instance,
        records: records.filter((r) => r.headers[MARKER_HEADER] === args['marker']).slice(-MAX_LISTED),
      });
    case 'probe_info':
      return JSON.stringify({ instance, headers: env.headers ?? {} });
    case 'emit_events':
      return (async () => {
        const count = Number(args['count']);
        for (let i = 1; i <= count; i++) {
          if (i > 1) await sleep(Number(args['intervalMs']), env.signal);
          await env.progress(i, count, JSON.stringify({ i, sentAt: Date.now() }));
        }
        return instance;
      })();
    case 'stay_silent':
      return sleep(Number(args['ms']), env.signal).then(() => instance);
    case 'large_payload':
      return 'x'.repeat(Number(args['bytes']));
    case 'receive':
      return String(String(args['data']).length);
  }
}

export async function startProbe(opts: { host?: string; port?: number; instance?: string }): Promise<Probe> {
  const instance = opts.instance ?? `probe-${process.pid}`;
  const records: ProbeRecord[] = [];
  let seq = 0;
  const registerV1 = (server: McpServerV1): void => {
    for (const [name, spec] of Object.entries(SHAPES) as [
      keyof typeof SHAPES,
      (typeof SHAPES)[keyof typeof SHAPES],
    ][]) {
      server.registerTool(
        name,
        { description: spec.description, inputSchema: spec.input as z.ZodRawShape },
        async (args: Record<string, unknown>, extra) => {
          const token = extra._meta?.progressToken;
          const env: Env = {
            headers: extra.requestInfo?.headers as Record<string, unknown> | undefined,
            signal: extra.signal,
            progress: async (progress, total, message) => {
              if (token !== undefined)
                await extra.sendNotification({
                  method: 'notifications/progress',
                  params: { progressToken: token, progress, total, message },
                });
            },
          };
          return text(await run(instance, records, name, args, env));
        },
      );
    }
  };
  const registerV2 = (server: McpServerV2, request: Request | undefined): void => {
    const headers = request ? Object.fromEntries(request.headers) : undefined;
    for (const [name, spec] of Object.entries(SHAPES) as [
      keyof typeof SHAPES,
      (typeof SHAPES)[keyof typeof SHAPES],
    ][]) {
      server.registerTool(
        name,
        { description: spec.description, inputSchema: z.object(spec.input as z.ZodRawShape) },
        async (args: Record<string, unknown>, ctx) => {
          const token = ctx.mcpReq._meta?.progressToken;
          const env: Env = {
            headers,
            signal: ctx.mcpReq.signal,
            progress: async (progress, total, message) => {
              if (token !== undefined)
                await ctx.mcpReq.notify({
                  method: 'notifications/progress',
                  params: { progressToken: token, progress, total, message },
                });
            },
          };
          return text(await run(instance, records, name, args, env));
        },
      );
    }
  };
  const onRequest = (req: IncomingMessage): void => {
    if ((req.url ?? '').startsWith('/probe/')) return;
    records.push({
      seq: ++seq,
      at: Date.now(),
      instance,
      method: req.method ?? '',
      target: req.url ?? '',
      headers: { ...req.headers },
    });
    if (records.length > MAX_RECORDS) records.splice(0, records.length - MAX_RECORDS);
  };
  const extraRoutes = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://probe');
    if (url.pathname === '/probe/requests' && req.method === 'GET') {
      const since = Number(url.searchParams.get('since') ?? 0);
      res
        .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(JSON.stringify({ instance, records: records.filter((r) => r.seq > since) }));
      return true;
    }
    if (
      url.pathname === '/.well-known/oauth-protected-resource' ||
      url.pathname === '/.well-known/oauth-protected-resource/mcp'
    ) {
      // What an MCP server that knows its public URL advertises; the probe learns that URL from
      // the Host the front passes on (its generated configs do), so the doctor can check that
      // the well-known path is routed here. Nothing on the probe needs a token.
      const proto = (one(req.headers['x-forwarded-proto']) ?? 'http').split(',')[0]!.trim();
      const host = one(req.headers.host) ?? 'localhost';
      const doc = {
        resource: `${proto}://${host}/mcp`,
        authorization_servers: ['https://sluice-probe.invalid'],
        bearer_methods_supported: ['header'],
        resource_name: `sluice probe ${instance}`,
      };
      res
        .writeHead(200, {
          'content-type': 'application/json',
          'cache-control': 'no-store',
          'access-control-allow-origin': '*',
        })
        .end(JSON.stringify(doc));
      return true;
    }
    if (url.pathname === '/probe/health') {
      res
        .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(JSON.stringify({ instance }));
      return true;
    }
    return false;
  };
  const kit = await startUpstreamKit(
    {
      name: `sluice-probe-${instance}`,
      registerV1,
      registerV2,
      loopbackOnly: false,
      omitAccelBuffering: true,
      onRequest,
      extraRoutes,
    },
    opts.port ?? 0,
    opts.host ?? '127.0.0.1',
  );
  return { kit, url: kit.url, instance, records, close: () => kit.close() };
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
