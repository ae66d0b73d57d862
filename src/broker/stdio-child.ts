// One stdio MCP server process, supervised: spawned without a shell in a process group of its
// own, fed newline-delimited JSON-RPC on stdin, read the same way from stdout. What it writes that
// is not a JSON-RPC message is logged and dropped, never passed on; stderr becomes log lines. A
// line over the size limit, or more lines a second than allowed, gets it stopped. Stopping is the
// whole group: SIGTERM, then SIGKILL after the grace period, so grandchildren that hold its pipes
// go too, and on Linux so do descendants that left the group (setsid; descendants.ts); the child
// is reaped by Node's own waitpid.
import { spawn, type ChildProcess } from 'node:child_process';
import type { StdioConfig } from '../config/schema.ts';
import { isJsonRpcMessage } from '../core/mcp.ts';
import type { Logger } from '../observability/logger.ts';
import { detectSecrets, lineRedactor } from '../observability/redact.ts';
import { capString } from '../observability/safe-text.ts';
import { watchEscapes, type EscapeWatch } from './descendants.ts';
import type { Slot } from './process-slots.ts';

/** A line as a log record carries it: capped, and credentials in it replaced (the payload log's detectors). */
const logged = (line: string, max: number): string => detectSecrets(capString(line, max));

export type ExitCause = 'stopped' | 'exited' | 'crashed' | 'spawn-failed' | 'flooded' | 'oversized-line';

/**
 * Told of every child this process spawns (the leader of its own process group) and of its reaping.
 * A worker tells its primary, which kills the groups of a worker that was killed outright (-9)
 * and so could not stop its children itself.
 */
export const childLifecycle: { spawned?(pid: number): void; reaped?(pid: number): void } = {};

export interface ChildEvents {
  message(msg: Record<string, unknown>): void;
  /** The child is gone (once): how, and in plain words why. */
  exit(cause: ExitCause, detail: string): void;
}

const KEPT_ENV = ['PATH', 'HOME', 'LANG'];
/** Bytes queued for a child's stdin beyond which senders wait for it to read (backpressure). */
export const STDIN_HIGH_WATER = 1024 * 1024;
const STDERR_LINE = 4096;

export class StdioChild {
  readonly pid: number | undefined;
  /** Settles when the process is running (spawned) or could not be started (rejects with why). */
  readonly ready: Promise<void>;
  /** Resolves once the process has exited and been reaped (or never started). */
  readonly gone: Promise<void>;
  private markGone!: () => void;
  private readonly proc: ChildProcess;
  private readonly events: ChildEvents;
  private readonly log: Logger;
  private readonly maxLine: number;
  private readonly maxLinesPerSecond: number;
  private readonly killGrace: number;
  private out = '';
  private err = '';
  private lines = 0;
  private windowStart = Date.now();
  private exited = false;
  private stopping: ExitCause | undefined;
  private stopReason = '';
  private killTimer: NodeJS.Timeout | undefined;
  /** Its stderr's redaction: a private key written over several lines is hidden whole. */
  private readonly redactLine = lineRedactor();
  /** Its descendants that left its process group (setsid): killed with it. */
  private readonly escapes: EscapeWatch;
  /** Its place in the server's process count, held until the process is reaped. */
  private readonly slot: Slot | undefined;

  constructor(cfg: StdioConfig, opts: { log: Logger; maxLine: number; events: ChildEvents; slot?: Slot | undefined }) {
    this.events = opts.events;
    this.slot = opts.slot;
    this.log = opts.log;
    this.maxLine = opts.maxLine;
    this.maxLinesPerSecond = cfg.maxLinesPerSecond;
    this.killGrace = cfg.killGrace;
    const env: NodeJS.ProcessEnv = cfg.inheritEnv ? { ...process.env } : {};
    if (!cfg.inheritEnv) for (const k of KEPT_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
    Object.assign(env, cfg.env);
    this.proc = spawn(cfg.command, cfg.args, {
      cwd: cfg.cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group: stopping it stops whatever it started.
      detached: true,
      shell: false,
      windowsHide: true,
    });
    this.pid = this.proc.pid;
    this.escapes = watchEscapes(this.proc.pid);
    if (this.pid !== undefined) childLifecycle.spawned?.(this.pid);
    this.ready = new Promise<void>((resolve, reject) => {
      this.proc.once('spawn', resolve);
      this.proc.once('error', reject);
    });
    this.ready.catch(() => undefined);
    this.gone = new Promise<void>((resolve) => (this.markGone = resolve));
    this.proc.stdout?.setEncoding('utf8');
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stdout?.on('data', this.onStdout);
    this.proc.stderr?.on('data', this.onStderr);
    // A child that exits while Sluice writes to it: the exit says what happened, not EPIPE.
    this.proc.stdin?.on('error', () => undefined);
    this.proc.once('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      this.finish(
        'spawn-failed',
        code === 'ENOENT' ? `${cfg.command}: command not found` : `${cfg.command}: ${err.message}`,
      );
    });
    this.proc.once('exit', (code, signal) => {
      if (this.stopping) return this.finish(this.stopping, this.stopReason);
      if (signal) return this.finish('crashed', `killed by ${signal}`);
      this.finish(code === 0 ? 'exited' : 'crashed', `exited with status ${code ?? '?'}`);
    });
  }

  get running(): boolean {
    return !this.exited;
  }

  send(msg: unknown): boolean {
    if (this.exited || !this.proc.stdin?.writable) return false;
    this.proc.stdin.write(`${JSON.stringify(msg)}\n`);
    return true;
  }

  /** Whether its stdin holds less than STDIN_HIGH_WATER unread bytes (a sender may go on at once). */
  get hasRoom(): boolean {
    return (this.proc.stdin?.writableLength ?? 0) < STDIN_HIGH_WATER;
  }

  /**
   * Resolves true once the child has read its stdin down below STDIN_HIGH_WATER, false when it has
   * not within `waitMs` or is gone: a child that stops reading makes its senders wait, never
   * Sluice's memory grow.
   */
  room(waitMs: number): Promise<boolean> {
    const stdin = this.proc.stdin;
    if (this.exited || !stdin?.writable) return Promise.resolve(false);
    if (this.hasRoom) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        stdin.off('drain', drained);
        stdin.off('close', gone);
        resolve(ok);
      };
      const drained = (): void => (this.hasRoom ? done(true) : undefined);
      const gone = (): void => done(false);
      const timer = setTimeout(() => done(false), waitMs);
      stdin.on('drain', drained);
      stdin.once('close', gone);
    });
  }

  /** Stop the child and its group: SIGTERM, then SIGKILL after the grace period. */
  stop(cause: ExitCause = 'stopped', reason = 'session ended'): void {
    if (this.exited || this.stopping) return;
    this.stopping = cause;
    this.stopReason = reason;
    this.escapes.look();
    this.proc.stdin?.end();
    this.signal('SIGTERM');
    this.killTimer = setTimeout(() => this.signal('SIGKILL'), this.killGrace);
    this.killTimer.unref();
  }

  /** The grace is over (Sluice's drain deadline): SIGKILL to the group now. */
  killNow(): void {
    if (!this.exited) this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.proc.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig); // the group
    } catch {
      try {
        this.proc.kill(sig);
      } catch {
        // already gone
      }
    }
  }

  private finish(cause: ExitCause, detail: string): void {
    if (this.exited) return;
    this.exited = true;
    clearTimeout(this.killTimer);
    // Whatever it started in its group goes with it, even when the leader exited by itself.
    if (this.proc.pid !== undefined) {
      try {
        process.kill(-this.proc.pid, 'SIGKILL');
      } catch {
        // no group left
      }
    }
    this.escapes.killAll();
    if (this.proc.pid !== undefined) childLifecycle.reaped?.(this.proc.pid);
    this.slot?.release();
    this.events.exit(cause, detail);
    this.markGone();
  }

  /** Counts a line against the flood limit; true when the child must stop. */
  private flooding(): boolean {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.lines = 0;
    }
    return ++this.lines > this.maxLinesPerSecond;
  }

  private readonly onStdout = (chunk: string): void => {
    if (this.exited || this.stopping) return;
    this.out += chunk;
    let nl: number;
    while ((nl = this.out.indexOf('\n')) !== -1) {
      const line = this.out.slice(0, nl).replace(/\r$/, '');
      this.out = this.out.slice(nl + 1);
      if (this.flooding()) return this.stop('flooded', `more than ${this.maxLinesPerSecond} lines a second`);
      if (Buffer.byteLength(line) > this.maxLine) return this.oversized();
      if (line.trim() !== '') this.onLine(line);
      if (this.exited || this.stopping) return;
    }
    if (Buffer.byteLength(this.out) > this.maxLine) this.oversized();
  };

  private oversized(): void {
    this.out = '';
    this.stop('oversized-line', `a stdout line over ${this.maxLine} bytes (limits.body)`);
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      msg = undefined;
    }
    if (!isJsonRpcMessage(msg)) {
      this.log.warn(
        { pid: this.pid, line: logged(line, 200) },
        'stdio server wrote a line that is not JSON-RPC: dropped',
      );
      return;
    }
    this.events.message(msg);
  }

  private readonly onStderr = (chunk: string): void => {
    this.err += chunk;
    let nl: number;
    while ((nl = this.err.indexOf('\n')) !== -1) {
      const line = this.err.slice(0, nl).replace(/\r$/, '');
      this.err = this.err.slice(nl + 1);
      if (this.flooding()) return this.stop('flooded', `more than ${this.maxLinesPerSecond} lines a second`);
      if (line.trim() !== '')
        this.log.info({ pid: this.pid, stderr: this.redactLine(capString(line, STDERR_LINE)) }, 'stdio server');
    }
    if (this.err.length > STDERR_LINE) {
      this.log.info({ pid: this.pid, stderr: this.redactLine(capString(this.err, STDERR_LINE)) }, 'stdio server');
      this.err = '';
    }
  };
}
