// Processes a stdio child started that left its process group (setsid, a double fork): a group
// kill misses them and they would outlive their session and Sluice. On Linux they are found by
// their parent links in /proc, while their parent is still alive: at the child's stop, and every
// few seconds for every child (one scan of /proc for all), so a grandchild whose parent exits
// first was still seen. Each is remembered with its start time, so a PID reused since is never
// killed. Elsewhere (no /proc) this finds nothing: the process group is the only bound there.
import { readdirSync, readFileSync } from 'node:fs';

interface Seen {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat: when it started, in clock ticks since boot (tells a reused PID apart). */
  readonly start: string;
}

const SCAN_EVERY_MS = 3000;
const HAS_PROC = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

function stat(pid: number): { ppid: number; pgid: number; start: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), pgid: Number(f[2]), start: f[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** Every process's parent, in one pass over /proc. */
function parents(): Map<number, number[]> {
  const kids = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const s = stat(pid);
    if (!s) continue;
    const list = kids.get(s.ppid);
    if (list) list.push(pid);
    else kids.set(s.ppid, [pid]);
  }
  return kids;
}

/** The descendants of `root` that are outside its process group (group `root`). */
function escapedFrom(root: number, kids: Map<number, number[]>): Seen[] {
  const out: Seen[] = [];
  const queue = [...(kids.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    const s = stat(pid);
    if (!s) continue;
    if (s.pgid !== root) out.push({ pid, start: s.start });
    queue.push(...(kids.get(pid) ?? []));
  }
  return out;
}

const watched = new Map<number, Map<number, Seen>>();
let timer: NodeJS.Timeout | undefined;

function scan(): void {
  const kids = parents();
  for (const [root, seen] of watched) for (const e of escapedFrom(root, kids)) seen.set(e.pid, e);
}

export interface EscapeWatch {
  /** Looks again now (the child is about to be stopped). */
  look(): void;
  /** SIGKILLs every escaped descendant seen that is still the same process, and stops watching. */
  killAll(): void;
}

/** Watches child `pid` (the leader of its own process group) for descendants that leave the group. */
export function watchEscapes(pid: number | undefined): EscapeWatch {
  if (!HAS_PROC || pid === undefined) return { look: () => undefined, killAll: () => undefined };
  const seen = new Map<number, Seen>();
  watched.set(pid, seen);
  if (!timer) {
    timer = setInterval(scan, SCAN_EVERY_MS);
    timer.unref();
  }
  return {
    look: () => {
      for (const e of escapedFrom(pid, parents())) seen.set(e.pid, e);
    },
    killAll: () => {
      watched.delete(pid);
      if (watched.size === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
      }
      for (const e of seen.values())
        if (stat(e.pid)?.start === e.start) {
          try {
            process.kill(e.pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
    },
  };
}
