// At most one notification per kind per window: the first goes at once, any more within the
// window go as one when it ends. A federated session's list_changed and resources/updated pass
// through it, so a member that announces a change a thousand times costs its client one
// notification per window (the member's own rate bound, member-link.ts, then cuts it).

/** The window in which one kind of change is told once (ms). */
export const COALESCE_MS = 250;
/** Kinds tracked at once (resource URIs are kinds of their own); past it, a notification goes as it comes. */
const MAX_KINDS = 1024;

interface Window {
  again: (() => void) | undefined;
  timer: NodeJS.Timeout;
}

export class Coalescer {
  private readonly windows = new Map<string, Window>();
  private readonly ms: number;

  constructor(ms = COALESCE_MS) {
    this.ms = ms;
  }

  send(kind: string, fire: () => void): void {
    const w = this.windows.get(kind);
    if (w) {
      w.again = fire;
      return;
    }
    fire();
    if (this.windows.size < MAX_KINDS) this.open(kind);
  }

  private open(kind: string): void {
    const w: Window = {
      again: undefined,
      timer: setTimeout(() => {
        this.windows.delete(kind);
        const again = w.again;
        if (again) {
          again();
          this.open(kind);
        }
      }, this.ms),
    };
    w.timer.unref();
    this.windows.set(kind, w);
  }

  close(): void {
    for (const w of this.windows.values()) clearTimeout(w.timer);
    this.windows.clear();
  }
}
