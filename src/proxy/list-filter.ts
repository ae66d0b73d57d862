// Hides what the route's policy denies from list answers (tools/list, prompts/list,
// resources/list, resources/templates/list), in JSON bodies and in SSE events alike. A JSON
// body is held whole (bounded) and rewritten; an SSE stream is cut into events by the shared
// framer and only events carrying a filtered result are rewritten, every other byte passes as it came.
import type { Principal } from '../security/principal.ts';
import type { ToolPolicy } from '../security/tool-policy.ts';
import type { BodyTransform } from '../transport/body-transform.ts';
import { blockLines, SseFramer } from '../transport/sse-framing.ts';

const MAX_JSON = 16 * 1024 * 1024;
const MAX_EVENT = 16 * 1024 * 1024;

export class ListFilter implements BodyTransform {
  private readonly policy: ToolPolicy;
  private readonly who: Principal | undefined;
  private readonly sse: boolean;
  private readonly framer = new SseFramer();
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(policy: ToolPolicy, who: Principal | undefined, sse: boolean) {
    this.policy = policy;
    this.who = who;
    this.sse = sse;
  }

  /** Bytes to send now. Throws when a body or event is too large to judge (the exchange must end). */
  push(chunk: Buffer): Buffer {
    if (!this.sse) {
      this.size += chunk.length;
      if (this.size > MAX_JSON) throw new Error(`list answer over ${MAX_JSON} bytes: too large to filter`);
      this.chunks.push(chunk);
      return EMPTY;
    }
    let out = '';
    for (const block of this.framer.push(chunk)) out += this.rewriteEvent(block);
    if (this.framer.holding > MAX_EVENT) throw new Error(`SSE event over ${MAX_EVENT} bytes: too large to filter`);
    return out ? Buffer.from(out, 'latin1') : EMPTY;
  }

  /** Whatever is left at the end of the body. */
  end(): Buffer {
    if (!this.sse) {
      const body = Buffer.concat(this.chunks);
      this.chunks = [];
      const filtered = this.filterJson(body.toString('utf8'));
      return filtered === undefined ? body : Buffer.from(filtered, 'utf8');
    }
    const rest = this.framer.release();
    return rest ? Buffer.from(rest, 'latin1') : EMPTY;
  }

  /** One event block (latin1, its blank line included): rewritten when it carries a filtered result. */
  private rewriteEvent(block: string): string {
    if (!block.includes('"result"')) return block;
    const lines = blockLines(block);
    const text = lines.slice(0, -1).map((l) => l.text);
    const data = text
      .filter((l) => l.startsWith('data:'))
      .map((l) => Buffer.from(l.slice(l.startsWith('data: ') ? 6 : 5), 'latin1').toString('utf8'));
    if (data.length === 0) return block;
    const filtered = this.filterJson(data.join('\n'));
    if (filtered === undefined) return block;
    // The event's own terminator (its last line's end and the blank line) is kept as it came.
    const terminator = (lines.at(-2)?.eol ?? '') + (lines.at(-1)?.eol ?? '');
    const kept = text.filter((l) => !l.startsWith('data:'));
    return [...kept, `data: ${Buffer.from(filtered, 'utf8').toString('latin1')}`].join('\n') + terminator;
  }

  /** The message re-serialised with its result filtered, or undefined to keep it as it was. */
  private filterJson(text: string): string | undefined {
    if (!text.includes('"result"')) return undefined;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (Array.isArray(msg)) {
      // A 2025-03-26 batch answer: each response on its own.
      let changed = false;
      const out = msg.map((m: unknown) => {
        const f = this.filterMessage(m);
        if (f) changed = true;
        return f ?? m;
      });
      return changed ? JSON.stringify(out) : undefined;
    }
    const f = this.filterMessage(msg);
    return f ? JSON.stringify(f) : undefined;
  }

  private filterMessage(msg: unknown): Record<string, unknown> | undefined {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return undefined;
    const result = (msg as Record<string, unknown>)['result'];
    if (typeof result !== 'object' || result === null || Array.isArray(result)) return undefined;
    const filtered = this.policy.filterResult(result as Record<string, unknown>, this.who);
    return filtered ? { ...(msg as Record<string, unknown>), result: filtered } : undefined;
  }
}

const EMPTY = Buffer.alloc(0);
