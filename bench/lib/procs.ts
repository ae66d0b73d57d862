// Child processes for the benchmark: started pinned to a CPU, waited for, measured from /proc,
// and always stopped by their own PID (never by name).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const HAS_TASKSET = (() => {
  try {
    readFileSync('/usr/bin/taskset');
    return true;
  } catch {
    return false;
  }
})();

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  output: () => string;
  stop: () => Promise<void>;
}

/** Spawn `cmd args` pinned to `cpu` (when taskset exists); stdout/stderr kept (bounded) for errors. */
export function startProc(name: string, cpu: number | undefined, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, stdout: 'pipe' | 'ignore' = 'pipe'): Proc {
  const pinned = cpu !== undefined && HAS_TASKSET;
  const child = spawn(pinned ? 'taskset' : cmd, pinned ? ['-c', String(cpu), cmd, ...args] : args, {
    env: { ...process.env, ...env },
    stdio: ['pipe', stdout, 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-8_000);
  };
  // Output is drained so a chatty child never blocks on a full pipe; only the tail is kept.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  return {
    name,
    child,
    pid: child.pid,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
      if (!done) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

export async function waitForPort(port: number, proc: Proc, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited early:\n${proc.output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${proc.name} did not listen on ${port} within ${timeoutMs} ms:\n${proc.output()}`);
}

/** The PID and all its descendants (nginx master + worker, the taskset-exec'd process…). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(parseStat(readFileSync(`/proc/${entry}/stat`, 'utf8'))[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // process ended while we looked
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

// Fields after the command name (which may contain spaces and parentheses).
function parseStat(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of the whole tree, in seconds. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const f = parseStat(readFileSync(`/proc/${p}/stat`, 'utf8'));
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch {
      // gone
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/** Resident set of the whole tree, in MiB. */
export function rssMiB(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m?.[1]) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

/** Run a process to completion and return its stdout (throws with stderr on a non-zero exit). */
export function runToEnd(cpu: number | undefined, cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const pinned = cpu !== undefined && HAS_TASKSET;
    const child = spawn(pinned ? 'taskset' : cmd, pinned ? ['-c', String(cpu), cmd, ...args] : args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}):\n${err}${out.slice(-2_000)}`));
    });
  });
}

/** The hard limit on open files of this process (children inherit it), from /proc/self/limits. */
export function openFilesLimit(): number {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    const hard = m?.[2];
    return hard === undefined || hard === 'unlimited' ? 1_048_576 : Number(hard);
  } catch {
    return 1_024;
  }
}
