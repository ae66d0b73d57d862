// An upstream process that dies mid-SSE (SIGKILL). With event ids the client can resume, so Sluice
// ends the stream cleanly between events; without any, the end must look like the failure it is:
// the client connection is cut, as it would be direct (curl exits 18, "partial file").
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { describe, it } from 'node:test';
import { startTestGateway, waitFor } from '../../helpers.ts';

// A real upstream in its own process, so that it can be killed outright.
const UPSTREAM = `
const http = require('node:http');
const withIds = process.argv[1] === 'ids';
let n = 0;
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const t = setInterval(() => { n++; res.write((withIds ? 'id: ' + n + '\\n' : '') + 'data: {"n":' + n + '}\\n\\n'); }, 50);
  res.on('close', () => clearInterval(t));
}).listen(0, '127.0.0.1', function () { console.log(this.address().port); });
`;

async function upstream(withIds: boolean): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['-e', UPSTREAM, withIds ? 'ids' : 'plain'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
  return { child, url: `http://127.0.0.1:${port}/mcp` };
}

/** curl through Sluice, the upstream SIGKILLed once two events arrived: curl's exit code and what it printed. */
async function curlWhileKilled(withIds: boolean): Promise<{ code: number; out: string }> {
  const up = await upstream(withIds);
  const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: up.url, healthCheck: { interval: 0 } }] });
  try {
    let out = '';
    const curl = execFile('curl', ['-sS', '-N', '--max-time', '10', '-H', 'accept: text/event-stream', `${gw.base}/mcp`]);
    curl.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = new Promise<number>((resolve) => curl.on('exit', (c) => resolve(c ?? -1)));
    await waitFor(() => (out.match(/data: /g) ?? []).length >= 2, 5000, 'two events through Sluice');
    up.child.kill('SIGKILL');
    return { code: await code, out };
  } finally {
    up.child.kill('SIGKILL');
    await gw.close();
  }
}

describe('an upstream that dies mid-stream', () => {
  it('without event ids: the client connection is cut (curl exit 18), never a clean end', async () => {
    const r = await curlWhileKilled(false);
    assert.equal(r.code, 18, `curl exit ${r.code}: ${r.out.slice(-200)}`);
    assert.match(r.out, /data: \{"n":2\}/);
  });

  it('with event ids: a clean end between events, so the client resumes with Last-Event-ID', async () => {
    const r = await curlWhileKilled(true);
    assert.equal(r.code, 0, `curl exit ${r.code}`);
    assert.match(r.out, /id: 2\ndata: \{"n":2\}\n\n/);
    assert.ok(r.out.endsWith('\n\n'), 'ended between events');
  });
});
