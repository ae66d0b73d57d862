// Where SSE events begin and end, in one place. An event ends at a blank line; lines end with
// CRLF, LF or a lone CR (the SSE spec), so `\r\r`, `\n\n`, `\r\n\r\n` and mixtures all end one.
// SseFramer cuts a stream into whole events for the transforms that rewrite them (the list filter,
// the HTTP+SSE endpoint rewrite); SseBoundary only tracks whether the bytes written so far sit
// between events, so that Sluice can add its own comment lines (heartbeats, the shutdown
// `retry:`) without splitting an upstream event, looking at nothing but each chunk's trailing
// CR/LF run (no parsing, no copies).

const CR = 0x0d;
const LF = 0x0a;

export class SseBoundary {
  /** Trailing CR/LF run seen so far, newest last; `content` says whether any other byte came before it. */
  private run: number[] = [];
  private content = false;

  observe(chunk: Uint8Array): void {
    let i = chunk.length - 1;
    while (i >= 0 && (chunk[i] === CR || chunk[i] === LF)) i--;
    if (i >= 0) {
      this.content = true;
      this.run = Array.from(chunk.subarray(i + 1));
    } else {
      this.run.push(...chunk);
      if (this.run.length > 4) this.run = this.run.slice(-4);
    }
  }

  /**
   * True when the stream is empty or ends with a blank line, CR-only framing (`\r\r`) included.
   * When the run ends in a CR, the next chunk may start with the LF of a CRLF; a comment put in
   * between turns that LF into one more empty line, which dispatches nothing (the event was
   * already dispatched by the blank line), so the stream means the same.
   */
  atBoundary(): boolean {
    if (!this.content) return this.run.length === 0 || this.terminators() >= 1;
    return this.terminators() >= 2;
  }

  private terminators(): number {
    let n = 0;
    for (let i = 0; i < this.run.length; i++) {
      if (this.run[i] === CR && this.run[i + 1] === LF) i++;
      n++;
    }
    return n;
  }
}

const LINE = /[^\r\n]*(\r\n|\r|\n)/y;

/**
 * Cuts a byte stream into complete event blocks. Blocks are latin1 strings (one char per byte, so
 * nothing is decoded and every byte comes back as it was), each ending with its blank line. A
 * block may hold only comments, or only the blank line itself.
 */
export class SseFramer {
  private held = '';
  /** Where scanning resumes in `held`: the start of the first line not yet seen whole. */
  private scanned = 0;

  push(chunk: Buffer): string[] {
    this.held += chunk.toString('latin1');
    const blocks: string[] = [];
    let start = 0;
    let pos = this.scanned;
    for (;;) {
      LINE.lastIndex = pos;
      const m = LINE.exec(this.held);
      if (!m) break;
      const end = pos + m[0].length;
      // A CR that ends the data so far may be the first half of a CRLF: a text line waits for the
      // next byte. A blank line ending in CR ends its event now; a following LF is then one more
      // empty line, which dispatches nothing.
      if (m[1] === '\r' && end === this.held.length && m[0].length > 1) break;
      if (m[0].length === m[1]!.length) {
        blocks.push(this.held.slice(start, end));
        start = end;
      }
      pos = end;
    }
    if (start > 0) this.held = this.held.slice(start);
    this.scanned = pos - start;
    return blocks;
  }

  /** Bytes of the event not yet complete. */
  get holding(): number {
    return this.held.length;
  }

  /** The unfinished rest (at the end of the stream, or when a transform gives up), as latin1. */
  release(): string {
    const rest = this.held;
    this.held = '';
    this.scanned = 0;
    return rest;
  }
}

/** The lines of a block without their terminators (the blank line's empty string included). */
export function blockLines(block: string): { text: string; eol: string }[] {
  const lines: { text: string; eol: string }[] = [];
  const re = /([^\r\n]*)(\r\n|\r|\n|$)/y;
  let pos = 0;
  while (pos < block.length) {
    re.lastIndex = pos;
    const m = re.exec(block)!;
    lines.push({ text: m[1]!, eol: m[2]! });
    pos += m[0].length;
  }
  return lines;
}

/** The data of an event block (latin1, as SseFramer cuts it): its data lines, UTF-8, joined; undefined without one. */
export function eventData(block: string): string | undefined {
  const data = blockLines(block)
    .map((l) => l.text)
    .filter((l) => l.startsWith('data:'))
    .map((l) => Buffer.from(l.slice(l.startsWith('data: ') ? 6 : 5), 'latin1').toString('utf8'));
  return data.length === 0 ? undefined : data.join('\n');
}

const ID_FIELD = Buffer.from('id:');

/**
 * Whether a chunk holds an `id:` field at the start of a line (the chunk's start counts as one):
 * a stream that carried one can be resumed with Last-Event-ID. A field split across two chunks is
 * missed, which only makes Sluice treat the stream as not resumable (the safe side).
 */
export function carriesEventId(chunk: Buffer): boolean {
  for (let i = chunk.indexOf(ID_FIELD); i !== -1; i = chunk.indexOf(ID_FIELD, i + 1)) {
    const before = i === 0 ? LF : chunk[i - 1];
    if (before === LF || before === CR) return true;
  }
  return false;
}
