// JSON.parse on a few MiB of nested brackets blocks the event loop for most of a second (every
// other client waits). One byte scan first, outside strings, refuses nesting deeper than the limit
// in a few milliseconds; JSON.parse then only sees bodies of bounded depth.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const OPEN_ARR = 0x5b;
const CLOSE_OBJ = 0x7d;
const CLOSE_ARR = 0x5d;

/** True when some array/object in `body` nests deeper than `limit` (counted in brackets). */
export function nestsDeeperThan(body: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJ || b === OPEN_ARR) {
      if (++depth > limit) return true;
    } else if (b === CLOSE_OBJ || b === CLOSE_ARR) depth--;
  }
  return false;
}
