// HTTP+SSE (2024-11-05): the server's first `endpoint` event names the URL the client must POST
// to. When the public path prefix differs from the upstream's, that URL has to be rewritten.
// This holds back bytes only until the first event is complete, rewrites its `data:` line,
// keeps every other byte (line terminators included) as it was, and then passes through.
import type { BodyTransform } from './body-transform.ts';
import { blockLines, SseFramer } from './sse-framing.ts';

const MAX_HOLD = 64 * 1024;

export class SseEndpointRewriter implements BodyTransform {
  private readonly framer = new SseFramer();
  private done = false;
  private readonly rewrite: (data: string) => string;

  constructor(rewrite: (data: string) => string) {
    this.rewrite = rewrite;
  }

  /** Bytes to send downstream now (possibly empty while the first event is incomplete). */
  push(chunk: Buffer): Buffer {
    if (this.done) return chunk;
    let out = '';
    for (const block of this.framer.push(chunk)) {
      if (this.done) {
        out += block;
        continue;
      }
      const result = this.handleBlock(block);
      // Comment-only blocks go out as they are; the first real event settles it either way.
      if (result !== 'comment') this.done = true;
      out += result === 'comment' || result === 'pass' ? block : result;
    }
    // Past the first event, or an unfinished one too large to be an endpoint: pass through.
    if (this.done || this.framer.holding > MAX_HOLD) {
      this.done = true;
      out += this.framer.release();
    }
    return Buffer.from(out, 'latin1');
  }

  /** At end of stream: whatever is still held goes out unchanged. */
  end(): Buffer {
    return Buffer.from(this.framer.release(), 'latin1');
  }

  /** 'comment': no fields, keep looking; 'pass': first real event is not `endpoint`; else the new block text. */
  private handleBlock(block: string): 'comment' | 'pass' | string {
    const lines = blockLines(block);
    let isEndpoint = false;
    let hasField = false;
    for (const l of lines) {
      if (l.text === '' || l.text.startsWith(':')) continue;
      hasField = true;
      const { field, value } = splitField(l.text);
      if (field === 'event') isEndpoint = value === 'endpoint';
    }
    if (!hasField) return 'comment';
    if (!isEndpoint) return 'pass';
    let rewritten = false;
    return lines
      .map((l) => {
        const { field, value } = splitField(l.text);
        if (field !== 'data' || rewritten || l.text.startsWith(':')) return l.text + l.eol;
        rewritten = true;
        // `data` is UTF-8 on the wire; decode for the rewrite, then back to latin1 bytes.
        const utf8 = Buffer.from(value, 'latin1').toString('utf8');
        const prefix = l.text.slice(0, l.text.length - value.length);
        return prefix + Buffer.from(this.rewrite(utf8), 'utf8').toString('latin1') + l.eol;
      })
      .join('');
  }
}

function splitField(line: string): { field: string; value: string } {
  const colon = line.indexOf(':');
  if (colon === -1) return { field: line, value: '' };
  let value = line.slice(colon + 1);
  if (value.startsWith(' ')) value = value.slice(1);
  return { field: line.slice(0, colon), value };
}
