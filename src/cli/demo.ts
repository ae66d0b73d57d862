// `sluice demo`: the bundled demo MCP server on a free loopback port, the gateway in front.
import { parseArgs } from 'node:util';
import { quickConfig } from '../config/load.ts';
import { registerDemoV1, registerDemoV2 } from '../demo/demo-tools.ts';
import { startUpstreamKit } from '../demo/upstream-kit.ts';
import { createLogger } from '../observability/logger.ts';
import { startGateway } from '../app.ts';
import { newKeyText } from '../session/key-ring.ts';

export async function runDemo(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { listen: { type: 'string' } }, strict: true });
  const upstream = await startUpstreamKit({
    name: 'sluice-demo',
    registerV1: registerDemoV1,
    registerV2: registerDemoV2,
  });
  const base = upstream.url.replace(/\/mcp$/, '');
  const config = quickConfig({ upstream: base, listen: values.listen ?? '127.0.0.1:8080', path: '/' });
  // The demo's upstream lives and dies with this process, so a per-run session key is the right
  // one (and the "generated a key" warning meant for real deployments would only confuse).
  process.env['SLUICE_SESSION_KEYS'] ??= newKeyText();
  const gw = await startGateway(config, createLogger(config.logging.level));
  const a = gw.addresses[0];
  const pub = `http://${a?.family === 'IPv6' ? `[${a.address}]` : a?.address}:${a?.port}`;
  process.stderr.write(
    [
      '',
      `Sluice demo: gateway ${pub}  ->  demo MCP server ${base} (official MCP SDK)`,
      '',
      `  Streamable HTTP (2025-11-25 sessions, and 2026-07-28 stateless):  ${pub}/mcp`,
      `  HTTP+SSE (2024-11-05):                                          ${pub}/sse`,
      '  Tools: echo, add, slow_count (streams a progress notification per step)',
      '',
      'Connect with the MCP Inspector CLI:',
      `  npx @modelcontextprotocol/inspector --cli ${pub}/mcp --transport http --method tools/list`,
      `  npx @modelcontextprotocol/inspector --cli ${pub}/mcp --transport http --method tools/call --tool-name slow_count --tool-arg steps=3`,
      'or with the official SDK client (examples/connect.ts in this repository):',
      `  npx node examples/connect.ts ${pub}/mcp`,
      '',
      'Access log lines follow (JSON). Ctrl-C stops both.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void gw
      .shutdown()
      .then(() => upstream.close())
      .then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
