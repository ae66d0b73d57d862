// The proxies under test, each started as its own process pinned next to the upstreams, with
// one public port carrying /raw/* to the raw upstream and /sdk/* to the SDK upstream.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { openFilesLimit, startProc, waitForPort, type Proc } from './procs.ts';

export type TargetName = 'direct' | 'sluice' | 'node-floor' | 'nginx' | 'haproxy';
export const TARGETS: TargetName[] = ['direct', 'sluice', 'node-floor', 'nginx', 'haproxy'];

export interface Upstreams {
  raw: number;
  sdk: number;
}

export interface RunningTarget {
  name: TargetName;
  /** Base URL for the raw upstream (…/raw) and the SDK upstream (…/sdk) through this target. */
  raw: string;
  sdk: string;
  /** The proxy process (undefined for direct). */
  proc: Proc | undefined;
  stop: () => Promise<void>;
}

// Sized to this machine's open-files limit (a proxied stream takes two descriptors).
const FD_LIMIT = Math.min(openFilesLimit(), 20_000);
const MAX_CONN = Math.max(256, Math.floor((FD_LIMIT - 200) / 2));

/** Idle streams one proxy can hold here: each takes a descriptor on both of its sides. */
export const MAX_STREAMS = MAX_CONN - 100;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

const SERVER_CPU = 0;

export async function startTarget(name: TargetName, up: Upstreams, workDir: string, repoRoot: string): Promise<RunningTarget> {
  if (name === 'direct') {
    return { name, raw: `http://127.0.0.1:${up.raw}/raw`, sdk: `http://127.0.0.1:${up.sdk}/sdk`, proc: undefined, stop: async () => undefined };
  }
  const port = await freePort();
  const dir = join(workDir, name);
  mkdirSync(dir, { recursive: true });
  let proc: Proc;
  if (name === 'sluice') {
    const cfg = join(dir, 'sluice.yaml');
    writeFileSync(
      cfg,
      [
        'listen: [{ host: 127.0.0.1, port: ' + port + ' }]',
        'routes:',
        `  - { path: /raw, upstream: "http://127.0.0.1:${up.raw}/raw" }`,
        `  - { path: /sdk, upstream: "http://127.0.0.1:${up.sdk}/sdk" }`,
        '',
      ].join('\n'),
    );
    // Defaults otherwise: the access log stays on (it is part of what Sluice does per request).
    // Started as users start it: the bin itself, so its shebang's Node flags apply.
    // The bench's own Node first on PATH, so the shebang's `node` is that Node and not an older
    // system one the launcher would have to re-exec from (an extra process in the measured tree).
    const path = `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`;
    proc = startProc('sluice', SERVER_CPU, join(repoRoot, 'bin/sluice.js'), ['serve', '--config', cfg], { PATH: path }, 'ignore');
  } else if (name === 'node-floor') {
    // With Sluice's own Node flags, so the two differ only in what Sluice does.
    const floor = join(import.meta.dirname, 'floor-proxy.ts');
    proc = startProc('node-floor', SERVER_CPU, process.execPath, ['--max-semi-space-size=2', floor, String(port), String(up.raw), String(up.sdk)]);
  } else if (name === 'nginx') {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConf(port, up, dir));
    proc = startProc('nginx', SERVER_CPU, 'nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')]);
  } else {
    const conf = join(dir, 'haproxy.cfg');
    writeFileSync(conf, haproxyConf(port, up));
    proc = startProc('haproxy', SERVER_CPU, 'haproxy', ['-db', '-f', conf]);
  }
  await waitForPort(port, proc);
  return { name, raw: `http://127.0.0.1:${port}/raw`, sdk: `http://127.0.0.1:${port}/sdk`, proc, stop: () => proc.stop() };
}

// nginx as the perf anchors tuned it for MCP: no buffering either way, HTTP/1.1 keep-alive to
// the upstream, long read timeouts, one worker, access log off.
function nginxConf(port: number, up: Upstreams, dir: string): string {
  return `daemon off;
worker_processes 1;
worker_rlimit_nofile ${FD_LIMIT};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${FD_LIMIT - 200}; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp_body;
  proxy_temp_path ${dir}/tmp_proxy;
  fastcgi_temp_path ${dir}/tmp_fcgi;
  uwsgi_temp_path ${dir}/tmp_uwsgi;
  scgi_temp_path ${dir}/tmp_scgi;
  keepalive_timeout 75s;
  keepalive_requests 100000;
  upstream up_raw { server 127.0.0.1:${up.raw}; keepalive 128; keepalive_requests 100000; keepalive_timeout 60s; }
  upstream up_sdk { server 127.0.0.1:${up.sdk}; keepalive 128; keepalive_requests 100000; keepalive_timeout 60s; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $host;
  proxy_buffering off;
  proxy_cache off;
  proxy_request_buffering off;
  proxy_read_timeout 1h;
  proxy_send_timeout 1h;
  server {
    listen 127.0.0.1:${port};
    location /raw/ { proxy_pass http://up_raw; }
    location /sdk/ { proxy_pass http://up_sdk; }
  }
}
`;
}

// HAProxy as tuned for MCP: http-no-delay (no ~200 ms SSE batching) and abortonclose (a client
// that goes away frees its upstream stream), keep-alive reuse, one thread.
function haproxyConf(port: number, up: Upstreams): string {
  return `global
  nbthread 1
  maxconn ${MAX_CONN}
defaults
  mode http
  option http-keep-alive
  option http-no-delay
  option abortonclose
  http-reuse always
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout http-keep-alive 75s
  timeout http-request 30s
frontend public
  bind 127.0.0.1:${port}
  use_backend b_sdk if { path_beg /sdk/ }
  default_backend b_raw
backend b_raw
  server s1 127.0.0.1:${up.raw}
backend b_sdk
  server s1 127.0.0.1:${up.sdk}
`;
}
