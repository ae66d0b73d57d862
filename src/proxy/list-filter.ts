// Hides what the route's policy denies from list answers (tools/list, prompts/list,
// resources/list, resources/templates/list), in JSON bodies and in SSE events alike. A JSON
// body is held whole (bounded) and rewritten; an SSE stream is cut at event boundaries and only
// events carrying a filtered result are rewritten, every other byte passes as it came.
import { StringDecoder } from 'node:string_decoder';
import type { Principal } from '../security/principal.ts';
import type { ToolPolicy } from '../security/tool-policy.ts';

const MAX_JSON = 16 * 1024 * 1024;
const MAX_EVENT = 16 * 1024 * 1024;
const BOUNDARY = /\r\n\r\n|\n\n|\r\r/;

export class ListFilter {
  private readonly policy: ToolPolicy;
  private readonly who: Principal | undefined;
  private readonly sse: boolean;
  private readonly decoder = new StringDecoder('utf8');
  private held = '';
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
    this.held += this.decoder.write(chunk);
    let out = '';
    for (;;) {
      const m = BOUNDARY.exec(this.held);
      if (!m) break;
      const end = m.index + m[0].length;
      out += this.rewriteEvent(this.held.slice(0, m.index)) + m[0];
      this.held = this.held.slice(end);
    }
    if (this.held.length > MAX_EVENT) throw new Error(`SSE event over ${MAX_EVENT} bytes: too large to filter`);
    return out ? Buffer.from(out, 'utf8') : EMPTY;
  }

  /** Whatever is left at the end of the body. */
  end(): Buffer {
    if (!this.sse) {
      const body = Buffer.concat(this.chunks);
      this.chunks = [];
      const filtered = this.filterJson(body.toString('utf8'));
      return filtered === undefined ? body : Buffer.from(filtered, 'utf8');
    }
    const rest = this.held + this.decoder.end();
    this.held = '';
    return rest ? Buffer.from(rest, 'utf8') : EMPTY;
  }

  private rewriteEvent(block: string): string {
    const lines = block.split(/\r\n|\n|\r/);
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
    if (data.length === 0) return block;
    const filtered = this.filterJson(data.join('\n'));
    if (filtered === undefined) return block;
    const kept = lines.filter((l) => !l.startsWith('data:'));
    return [...kept, `data: ${filtered}`].join('\n');
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
