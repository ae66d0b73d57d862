// The minimal raw upstream: as cheap as a Node HTTP server can be, so the proxy in front is
// what the figures measure. POST answers a fixed JSON-RPC result; GET /sse?n&iv emits n timed
// events iv ms apart stamped with CLOCK_MONOTONIC (process.hrtime, comparable across processes on
// this host); GET /idle holds a silent SSE stream; GET /stats says how many idle streams are open.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const RESULT = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'hello' }] } }));
const JSON_HEAD = { 'content-type': 'application/json', 'content-length': String(RESULT.length) };
const SSE_HEAD = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };
let idleOpen = 0;

const server = createServer((req, res) => {
  if (req.method === 'POST') {
    req.resume();
    req.on('end', () => res.writeHead(200, JSON_HEAD).end(RESULT));
    return;
  }
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname.endsWith('/sse')) {
    const n = Math.min(Number(url.searchParams.get('n') ?? 30), 10_000);
    const iv = Math.max(Number(url.searchParams.get('iv') ?? 20), 1);
    res.writeHead(200, SSE_HEAD);
    res.flushHeaders();
    let i = 0;
    const timer = setInterval(() => {
      i += 1;
      res.write(`id: ${i}\ndata: {"t":"${process.hrtime.bigint()}"}\n\n`);
      if (i >= n) {
        clearInterval(timer);
        res.end();
      }
    }, iv);
    res.on('close', () => clearInterval(timer));
    return;
  }
  if (url.pathname.endsWith('/idle')) {
    idleOpen += 1;
    res.writeHead(200, SSE_HEAD);
    res.write(': open\n\n');
    res.on('close', () => (idleOpen -= 1));
    return;
  }
  if (url.pathname.endsWith('/stats')) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ idleOpen }));
    return;
  }
  res.writeHead(404).end();
});
// Longer than any proxy's pooled idle time, so a proxy never races a closing keep-alive socket.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.requestTimeout = 0;
server.maxConnections = 20_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
