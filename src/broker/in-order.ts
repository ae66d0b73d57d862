// Messages handed to an SDK client in the order its peer wrote them. The SDK's Protocol runs a
// notification's handler a microtask late but settles a response at once, dropping the request's
// progress handler as it does: a result that follows its last progress notification in the same
// read (a stdio child writes both in one chunk; an in-memory pipe delivers both in one tick)
// overtakes it, and the progress is lost ("unknown token"). A response right behind a
// notification is therefore held until the notification's handler has run, and everything after
// it waits its turn.
import type { JSONRPCMessage } from '@modelcontextprotocol/client';

export type Deliver = (m: JSONRPCMessage) => void;

export function inOrder(deliver: Deliver): Deliver {
  /** Notifications handed over whose handlers (a microtask late) have not run yet. */
  let unheard = 0;
  let held: JSONRPCMessage[] | undefined;
  const flush = (): void => {
    const q = held ?? [];
    held = undefined;
    for (let i = 0; i < q.length; i++) {
      const m = q[i] as JSONRPCMessage;
      if (isResponse(m) && unheard > 0) {
        held = q.slice(i);
        setImmediate(flush);
        return;
      }
      hand(m);
    }
  };
  const hand = (m: JSONRPCMessage): void => {
    deliver(m);
    if (!('id' in m) && 'method' in m) {
      unheard++;
      // Queued after the SDK's own dispatch of this notification, so it runs once that has.
      queueMicrotask(() => void Promise.resolve().then(() => unheard--));
    }
  };
  return (m) => {
    if (held) held.push(m);
    else if (isResponse(m) && unheard > 0) {
      held = [m];
      setImmediate(flush);
    } else hand(m);
  };
}

const isResponse = (m: JSONRPCMessage): boolean => 'id' in m && !('method' in m);
