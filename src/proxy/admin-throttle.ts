// Guesses at the admin token, counted per client address and per way of sending it (the sign-in
// form, a bearer header): past the limit in a minute that client is answered 429 for the rest of
// the minute, the right token included, while everyone else (the real admin elsewhere) signs in
// as before. A global count let anyone lock the admin out; an uncounted bearer header let anyone
// guess without end. Bounded in the addresses it remembers.
export const GUESSES_PER_MINUTE = 20;
const WINDOW_MS = 60_000;
const MAX_CLIENTS = 10_000;

export type GuessScheme = 'form' | 'bearer';

export class GuessThrottle {
  private readonly tries = new Map<string, number[]>();

  /** Seconds before this client may guess again by this scheme (0: now). */
  wait(scheme: GuessScheme, peer: string | undefined, now = Date.now()): number {
    const key = `${scheme} ${peer ?? '?'}`;
    const recent = (this.tries.get(key) ?? []).filter((t) => now - t < WINDOW_MS);
    if (recent.length === 0) this.tries.delete(key);
    else this.tries.set(key, recent);
    if (recent.length < GUESSES_PER_MINUTE) return 0;
    return Math.max(1, Math.ceil((WINDOW_MS - (now - (recent[0] as number))) / 1000));
  }

  /** A wrong token from this client by this scheme. */
  failed(scheme: GuessScheme, peer: string | undefined, now = Date.now()): void {
    const key = `${scheme} ${peer ?? '?'}`;
    const list = this.tries.get(key);
    if (list) list.push(now);
    else {
      // The oldest client is forgotten first (a Map keeps insertion order).
      if (this.tries.size >= MAX_CLIENTS) this.tries.delete(this.tries.keys().next().value as string);
      this.tries.set(key, [now]);
    }
  }
}
