// Reads SSE events out of a stream for observers (the payload tap) with a cap on what it holds:
// an event whose data passes `cap` characters is reported by size only, and an endless `data:`
// line costs no more than the cap. eventsource-parser keeps a whole event in memory whatever its
// size, which let one 300 MiB event from any upstream (tenant-registered ones included) take
// 800 MiB of RSS. Line endings per the SSE spec: CRLF, LF or a lone CR.

export interface CappedEvent {
  event: string;
  /** The data lines joined with LF; undefined when the event passed the cap. */
  data: string | undefined;
  /** Characters of data the event carried (all of them, also past the cap). */
  size: number;
}

const EOL = /[\r\n]/g;

export class CappedSseReader {
  private line = '';
  private lineSize = 0;
  private data: string[] = [];
  private dataSize = 0;
  private hasData = false;
  private event = '';
  private afterCR = false;
  private readonly cap: number;
  private readonly onEvent: (e: CappedEvent) => void;

  constructor(cap: number, onEvent: (e: CappedEvent) => void) {
    this.cap = cap;
    this.onEvent = onEvent;
  }

  feed(text: string): void {
    let i = 0;
    if (this.afterCR && text.charCodeAt(0) === 0x0a) i = 1; // the LF of a CRLF split across chunks
    this.afterCR = false;
    while (i < text.length) {
      EOL.lastIndex = i;
      const m = EOL.exec(text);
      if (!m) {
        this.append(text, i, text.length);
        return;
      }
      this.append(text, i, m.index);
      this.endLine();
      i = m.index + 1;
      if (text.charCodeAt(m.index) === 0x0d) {
        if (i === text.length) this.afterCR = true;
        else if (text.charCodeAt(i) === 0x0a) i++;
      }
    }
  }

  private append(text: string, from: number, to: number): void {
    const n = to - from;
    if (n === 0) return;
    const room = this.cap + 16 - this.line.length; // room for a field name beyond the cap
    if (room > 0) this.line += text.slice(from, from + Math.min(n, room));
    this.lineSize += n;
  }

  private endLine(): void {
    const { line, lineSize } = this;
    this.line = '';
    this.lineSize = 0;
    if (lineSize === 0) return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const skip = colon === -1 ? line.length : colon + 1 + (line.charCodeAt(colon + 1) === 0x20 ? 1 : 0);
    const size = lineSize - skip;
    if (field === 'data') {
      if (this.hasData) this.dataSize++; // the LF that joins data lines
      this.hasData = true;
      this.dataSize += size;
      if (this.dataSize > this.cap)
        this.data = []; // past the cap: nothing more of this event is kept
      else this.data.push(line.slice(skip));
    } else if (field === 'event' && lineSize === line.length) this.event = line.slice(skip);
  }

  private dispatch(): void {
    const { data, dataSize, event, hasData } = this;
    this.data = [];
    this.dataSize = 0;
    this.hasData = false;
    this.event = '';
    if (!hasData) return;
    this.onEvent({
      event: event || 'message',
      data: dataSize > this.cap ? undefined : data.join('\n'),
      size: dataSize,
    });
  }
}
