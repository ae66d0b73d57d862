// Connect to an MCP endpoint (for example the Sluice demo) with the official SDK client,
// list the tools and call slow_count with progress.  Usage: node examples/connect.ts URL
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/mcp';
const client = new Client({ name: 'sluice-example', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const { tools } = await client.listTools();
console.log('tools:', tools.map((t) => t.name).join(', '));
const result = await client.callTool({ name: 'slow_count', arguments: { steps: 3, intervalMs: 300 } }, undefined, {
  onprogress: (p) => console.log(`progress ${p.progress}/${p.total}: ${p.message ?? ''}`),
});
console.log('result:', JSON.stringify(result.content));
await client.close();
