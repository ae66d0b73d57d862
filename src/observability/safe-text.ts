// Log lines are JSON, one per record, whatever went into them. JSON.stringify already escapes
// C0 controls (CR, LF, ESC …) but leaves characters that break lines or mislead readers in
// other tools: U+2028/U+2029 (line breaks for many log viewers), DEL and C1 controls (terminal
// escapes), bidi overrides (text that reads differently than it is). Escaping them inside the
// serialised JSON keeps every value intact.

const UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const HAS_UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

export function escapeUnsafe(json: string): string {
  return HAS_UNSAFE.test(json)
    ? json.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : json;
}

/** Longest string a log field keeps; the rest is cut with a note of the original length. */
export const MAX_FIELD = 2048;

export function capString(s: string, max = MAX_FIELD): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[${s.length} chars]`;
}
