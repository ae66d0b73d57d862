// Tracks whether a byte stream of SSE currently sits between two events, so that Sluice can add
// its own comment lines (heartbeats, the shutdown `retry:`) without splitting an upstream event.
// It only looks at the trailing run of CR/LF bytes of each chunk: no parsing, no copies.

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
