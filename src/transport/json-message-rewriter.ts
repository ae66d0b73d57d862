// Rewrites JSON-RPC messages in an upstream answer, in a JSON body and in SSE events alike, for
// the stages that change what a message says (the list filter, the sealing of requestState and
// task ids). A JSON body is held whole (bounded) and rewritten; an SSE stream is cut into events
// by the shared framer and only events holding one of the hint strings are parsed, so every
// other byte passes as it came. A message the rewrite leaves alone keeps its bytes.
import type { BodyTransform } from './body-transform.ts';
import { blockLines, eventData, SseFramer } from './sse-framing.ts';

const MAX_JSON = 16 * 1024 * 1024;
const MAX_EVENT = 16 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export type JsonObject = Record<string, unknown>;
/** One string value to replace by another: [the value as it is, the value it becomes]. */
export type StringSwap = readonly [from: string, to: string];
/**
 * A rewritten message. With `swaps`, when each old value occurs exactly once in the message's
 * text, the swaps are made in the text itself and every other byte stays as the upstream wrote
 * it (a re-serialisation would, say, round integers past 2^53); else the message is re-serialised.
 */
export interface Rewritten {
  msg: JsonObject;
  swaps?: readonly StringSwap[];
}
/** The message rewritten, or undefined to keep it as it came. */
export type MessageRewrite = (msg: JsonObject) => Rewritten | undefined;

/** `text` with each swap's JSON string literal replaced, or undefined unless each occurs exactly once. */
export function swapJsonStrings(text: string, swaps: readonly StringSwap[]): string | undefined {
  let out = text;
  for (const [from, to] of swaps) {
    const literal = JSON.stringify(from);
    const at = out.indexOf(literal);
    if (at === -1 || out.indexOf(literal, at + literal.length) !== -1) return undefined;
    out = out.slice(0, at) + JSON.stringify(to) + out.slice(at + literal.length);
  }
  return out;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class JsonMessageRewriter implements BodyTransform {
  private readonly sse: boolean;
  private readonly hints: readonly string[];
  private readonly rewrite: MessageRewrite;
  private readonly what: string;
  private readonly framer = new SseFramer();
  private readonly oversize: 'fail' | 'pass';
  private chunks: Buffer[] = [];
  private size = 0;
  /** Over the size limit in 'pass' mode: the rest of the body goes through untouched. */
  private passing = false;

  /**
   * `hints`: a message is parsed only when its text holds one of them; `what` names the job in
   * errors. `oversize`: what a body or event too large to hold does, 'fail' the exchange (a
   * filter that must not let anything past unjudged) or 'pass' through untouched from there on
   * (a rewrite that only matters for small messages).
   */
  constructor(
    sse: boolean,
    hints: readonly string[],
    rewrite: MessageRewrite,
    what: string,
    oversize: 'fail' | 'pass' = 'fail',
  ) {
    this.sse = sse;
    this.hints = hints;
    this.rewrite = rewrite;
    this.what = what;
    this.oversize = oversize;
  }

  /** Bytes to send now. Throws when a body or event is too large to judge (the exchange must end). */
  push(chunk: Buffer): Buffer {
    if (this.passing) return chunk;
    if (!this.sse) {
      this.size += chunk.length;
      this.chunks.push(chunk);
      if (this.size > MAX_JSON) return this.tooLarge(`answer over ${MAX_JSON} bytes`, Buffer.concat(this.chunks));
      return EMPTY;
    }
    let out = '';
    for (const block of this.framer.push(chunk)) out += this.rewriteEvent(block);
    if (this.framer.holding > MAX_EVENT) {
      out += this.framer.release();
      return this.tooLarge(`SSE event over ${MAX_EVENT} bytes`, Buffer.from(out, 'latin1'));
    }
    return out ? Buffer.from(out, 'latin1') : EMPTY;
  }

  private tooLarge(what: string, held: Buffer): Buffer {
    if (this.oversize === 'fail') throw new Error(`${what}: too large to ${this.what}`);
    this.passing = true;
    this.chunks = [];
    return held;
  }

  /** Whatever is left at the end of the body. */
  end(): Buffer {
    if (this.passing) return EMPTY;
    if (!this.sse) {
      const body = Buffer.concat(this.chunks);
      this.chunks = [];
      const rewritten = this.rewriteText(body.toString('utf8'));
      return rewritten === undefined ? body : Buffer.from(rewritten, 'utf8');
    }
    const rest = this.framer.release();
    return rest ? Buffer.from(rest, 'latin1') : EMPTY;
  }

  private hinted(text: string): boolean {
    for (const h of this.hints) if (text.includes(h)) return true;
    return false;
  }

  /** One event block (latin1, its blank line included): rewritten when its message is. */
  private rewriteEvent(block: string): string {
    if (!this.hinted(block)) return block;
    const data = eventData(block);
    if (data === undefined) return block;
    const rewritten = this.rewriteText(data);
    if (rewritten === undefined) return block;
    const lines = blockLines(block);
    const text = lines.slice(0, -1).map((l) => l.text);
    // The event's own terminator (its last line's end and the blank line) is kept as it came.
    const terminator = (lines.at(-2)?.eol ?? '') + (lines.at(-1)?.eol ?? '');
    const kept = text.filter((l) => !l.startsWith('data:'));
    return [...kept, `data: ${Buffer.from(rewritten, 'utf8').toString('latin1')}`].join('\n') + terminator;
  }

  /** The message (or 2025-03-26 batch) re-serialised with its rewrite, or undefined to keep it. */
  private rewriteText(text: string): string | undefined {
    if (!this.hinted(text)) return undefined;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (Array.isArray(msg)) {
      let changed = false;
      const out = msg.map((m: unknown) => {
        const r = isJsonObject(m) ? this.rewrite(m) : undefined;
        if (r) changed = true;
        return r?.msg ?? m;
      });
      return changed ? JSON.stringify(out) : undefined;
    }
    const r = isJsonObject(msg) ? this.rewrite(msg) : undefined;
    if (!r) return undefined;
    return (r.swaps && swapJsonStrings(text, r.swaps)) ?? JSON.stringify(r.msg);
  }
}
