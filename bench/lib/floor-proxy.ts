// The floor under Sluice: the two libraries it stands on (node:http towards the client, undici's
// dispatch towards the upstream) wired as a pass-through proxy with nothing else — no routes,
// no policy, no timers, no access log, no metrics. What this costs per request and per idle
// stream, Node costs any gateway built the way Sluice is; what Sluice costs above it is Sluice.
// Upstream connections come from a stack of idle keep-alive clients per upstream, as in Sluice
// (undici's Pool walks all its clients on each connect and close).
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Client, type Dispatcher } from 'undici';

const [port, rawPort, sdkPort] = process.argv.slice(2).map(Number);
const origins = { raw: `http://127.0.0.1:${rawPort}`, sdk: `http://127.0.0.1:${sdkPort}` };
const idle: Record<keyof typeof origins, Client[]> = { raw: [], sdk: [] };
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'proxy-connection', 'te']);

function forwardHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined && !HOP.has(k)) out[k] = v;
  }
  return out;
}

createServer({ keepAliveTimeout: 75_000, requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
  const which = req.url?.startsWith('/sdk/') ? 'sdk' : 'raw';
  const client = idle[which].pop() ?? new Client(origins[which], { pipelining: 1, keepAliveTimeout: 60_000 });
  const chunks: Buffer[] = [];
  let done = false;
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart(c, status, headers) {
        c.rawHeaders = null;
        res.writeHead(status, forwardHeaders(headers as IncomingHttpHeaders));
        if (String(headers['content-type']).startsWith('text/event-stream')) res.flushHeaders();
      },
      onResponseData(_c, chunk) {
        res.write(chunk);
      },
      onResponseEnd() {
        done = true;
        idle[which].push(client);
        res.end();
      },
      onResponseError(_c, err) {
        done = true;
        client.destroy().catch(() => undefined);
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy(err);
      },
    };
    client.dispatch(
      {
        origin: origins[which],
        path: req.url ?? '/',
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers: forwardHeaders(req.headers),
        body: chunks.length ? Buffer.concat(chunks) : null,
      },
      handler,
    );
  });
  // A client that goes away takes its upstream stream with it.
  res.on('close', () => {
    if (!done) client.destroy().catch(() => undefined);
  });
}).listen(port, '127.0.0.1');

process.on('SIGTERM', () => process.exit(0));
