// `sluice probe --listen HOST:PORT [--instance NAME]`: the probe MCP server, until SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { startProbe } from '../probe/probe-server.ts';

export async function runProbe(args: string[], usage: (message: string) => never): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { listen: { type: 'string' }, instance: { type: 'string' } },
    strict: true,
  });
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(values.listen ?? '127.0.0.1:8090');
  if (!m) usage(`--listen "${values.listen}" is not host:port`);
  const probe = await startProbe({
    host: m[1] ?? (m[2] || '127.0.0.1'),
    port: Number(m[3]),
    instance: values.instance,
  });
  process.stderr.write(
    `sluice probe ${probe.instance}: MCP at ${probe.url} (HTTP+SSE at /sse), what reached it at ${new URL('/probe/requests', probe.url).href}\n`,
  );
  const stop = (): void => void probe.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
