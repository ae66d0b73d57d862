// The demo upstream's tools, written once and registered on both SDK lines.
import type { McpServer as McpServerV1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { McpServer as McpServerV2 } from '@modelcontextprotocol/server';
import { z } from 'zod';

interface ToolEnv {
  progress(progress: number, total: number, message: string): Promise<void>;
  signal: AbortSignal;
}

interface ToolSpec {
  name: string;
  description: string;
  inputSchema: z.ZodRawShape;
  run(args: Record<string, unknown>, env: ToolEnv): Promise<string>;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new Error('cancelled'));
      },
      { once: true },
    );
  });

export const DEMO_TOOLS: ToolSpec[] = [
  {
    name: 'echo',
    description: 'Returns the message it was given.',
    inputSchema: { message: z.string() },
    run: async (a) => String(a['message']),
  },
  {
    name: 'add',
    description: 'Adds two numbers.',
    inputSchema: { a: z.number(), b: z.number() },
    run: async (a) => String(Number(a['a']) + Number(a['b'])),
  },
  {
    name: 'slow_count',
    description: 'Counts to `steps`, one step every `intervalMs`, streaming a progress notification per step.',
    inputSchema: {
      steps: z.number().int().min(1).max(100).default(5),
      intervalMs: z.number().int().min(0).max(60_000).default(500),
    },
    run: async (a, env) => {
      const steps = Number(a['steps'] ?? 5);
      const interval = Number(a['intervalMs'] ?? 500);
      for (let i = 1; i <= steps; i++) {
        await sleep(interval, env.signal);
        await env.progress(i, steps, `step ${i} of ${steps}`);
      }
      return `counted to ${steps}`;
    },
  },
];

function text(s: string) {
  return { content: [{ type: 'text' as const, text: s }] };
}

export function registerDemoV1(server: McpServerV1): void {
  for (const t of DEMO_TOOLS) {
    server.registerTool(
      t.name,
      { description: t.description, inputSchema: t.inputSchema },
      async (args: Record<string, unknown>, extra) => {
        const token = extra._meta?.progressToken;
        const env: ToolEnv = {
          signal: extra.signal,
          progress: async (progress, total, message) => {
            if (token !== undefined)
              await extra.sendNotification({
                method: 'notifications/progress',
                params: { progressToken: token, progress, total, message },
              });
          },
        };
        return text(await t.run(args, env));
      },
    );
  }
}

export function registerDemoV2(server: McpServerV2): void {
  for (const t of DEMO_TOOLS) {
    server.registerTool(
      t.name,
      { description: t.description, inputSchema: z.object(t.inputSchema) },
      async (args: Record<string, unknown>, ctx) => {
        const token = ctx.mcpReq._meta?.progressToken;
        const env: ToolEnv = {
          signal: ctx.mcpReq.signal,
          progress: async (progress, total, message) => {
            if (token !== undefined)
              await ctx.mcpReq.notify({
                method: 'notifications/progress',
                params: { progressToken: token, progress, total, message },
              });
          },
        };
        return text(await t.run(args, env));
      },
    );
  }
}
