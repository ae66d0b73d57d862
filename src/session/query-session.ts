// HTTP+SSE (2024-11-05) carries the session in the POST URL's query: `?sessionId=…` (TypeScript
// SDK) or `?session_id=…` (Python SDK). Sluice swaps that value for a sealed token on the way
// out (the `endpoint` event) and back on the way in (each POST), leaving every other byte alone.

const NAMES = new Set(['sessionId', 'session_id']);

export interface QueryParam {
  /** The value as written in the URL (percent-encoding kept). */
  value: string;
  start: number;
  end: number;
}

/** The session parameter of a query string ('?…' or ''), first occurrence. */
export function findSessionParam(query: string): QueryParam | undefined {
  if (!query.startsWith('?')) return undefined;
  let pos = 1;
  while (pos <= query.length) {
    let amp = query.indexOf('&', pos);
    if (amp === -1) amp = query.length;
    const eq = query.indexOf('=', pos);
    if (eq !== -1 && eq < amp && NAMES.has(query.slice(pos, eq)))
      return { value: query.slice(eq + 1, amp), start: eq + 1, end: amp };
    pos = amp + 1;
  }
  return undefined;
}

export function replaceParam(query: string, p: QueryParam, value: string): string {
  return query.slice(0, p.start) + value + query.slice(p.end);
}
