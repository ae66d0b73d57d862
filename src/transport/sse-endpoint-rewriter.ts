// HTTP+SSE (2024-11-05): the server's first `endpoint` event names the URL the client must POST
// to. When the public path prefix differs from the upstream's, that URL has to be rewritten.
// This holds back bytes only until the first event is complete, rewrites its `data:` line,
// keeps every other byte (line terminators included) as it was, and then passes through.

const MAX_HOLD = 64 * 1024;
const LINE = /([^\r\n]*)(\r\n|\r|\n)/y;

export class SseEndpointRewriter {
  private held = '';
  private done = false;
  private readonly rewrite: (data: string) => string;

  constructor(rewrite: (data: string) => string) {
    this.rewrite = rewrite;
  }

  /** Bytes to send downstream now (possibly empty while the first event is incomplete). */
  push(chunk: Buffer): Buffer {
    if (this.done) return chunk;
    this.held += chunk.toString('latin1');
    const out = this.scan(false);
    return out;
  }

  /** Called at end of stream: whatever is still held goes out unchanged. */
  flush(): Buffer {
    if (this.done) return Buffer.alloc(0);
    return this.scan(true);
  }

  private scan(final: boolean): Buffer {
    // latin1 keeps a 1:1 byte<->char mapping, so offsets are byte offsets.
    let out = '';
    let blockStart = 0;
    LINE.lastIndex = 0;
    let pos = 0;
    let blockLines: { text: string; eol: string; start: number }[] = [];
    for (;;) {
      LINE.lastIndex = pos;
      const m = LINE.exec(this.held);
      if (!m) break;
      const [whole, text = '', eol = ''] = m;
      // A CR at the very end may be the first half of CRLF: wait for the next byte, unless it ends
      // a blank line (CR-only framing): the event is complete, and a following LF is only one
      // more empty line.
      if (eol === '\r' && text !== '' && pos + whole.length === this.held.length && !final) break;
      const start = pos;
      pos += whole.length;
      if (text !== '') {
        blockLines.push({ text, eol, start });
        continue;
      }
      // Blank line: the block [blockStart, pos) is one event (or a comment-only block).
      const result = this.handleBlock(blockLines);
      if (result === 'pass') {
        out += this.held.slice(blockStart, pos);
      } else if (result === 'comment') {
        out += this.held.slice(blockStart, pos);
        blockStart = pos;
        blockLines = [];
        continue;
      } else {
        out += result + this.held.slice(pos - whole.length, pos);
      }
      this.done = true;
      out += this.held.slice(pos);
      this.held = '';
      return Buffer.from(out, 'latin1');
    }
    if (final || this.held.length - blockStart > MAX_HOLD) {
      this.done = true;
      out += this.held.slice(blockStart);
      this.held = '';
      return Buffer.from(out, 'latin1');
    }
    this.held = this.held.slice(blockStart);
    return Buffer.from(out, 'latin1');
  }

  /** 'comment': no fields, keep looking; 'pass': first real event is not `endpoint`; else the new block text. */
  private handleBlock(lines: { text: string; eol: string }[]): 'comment' | 'pass' | string {
    let isEndpoint = false;
    let hasField = false;
    for (const l of lines) {
      if (l.text.startsWith(':')) continue;
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
