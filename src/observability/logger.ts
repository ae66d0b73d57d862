// Process log and access log: JSON lines through pino. The access log is built from an allowlist
// of fields (see access-log.ts), never from raw headers, so secrets cannot slip in by name.
import { pino, type Logger, type DestinationStream } from 'pino';
import { capString, escapeUnsafe } from './safe-text.ts';

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { svc: 'sluice' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        // Upstream errors, paths and names reach log fields: cap their strings.
        log: (obj) => {
          for (const k in obj) if (typeof obj[k] === 'string') obj[k] = capString(obj[k] as string);
          return obj;
        },
      },
      hooks: { streamWrite: escapeUnsafe },
    },
    // Lines are batched up to 4 KiB and flushed at least every 250 ms: one write() per access
    // line cost more CPU than the proxying itself under load. pino flushes what is left at exit.
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 250 }),
  );
}

/**
 * Where access lines go: the logger's own destination (same stream, same batching), or nowhere
 * when the level hides info lines.
 */
export function accessWriter(log: Logger, worker?: number): ((line: string) => void) | undefined {
  if (!log.isLevelEnabled('info')) return undefined;
  const stream = (log as unknown as Record<symbol, { write(s: string): unknown }>)[pino.symbols.streamSym];
  if (!stream) throw new Error('pino logger without a destination stream');
  if (worker === undefined) return (line) => void stream.write(line);
  // Under --workers every line says which worker wrote it (the lines are built whole, not by pino).
  const field = `{"worker":${worker},`;
  return (line) => void stream.write(field + line.slice(1));
}

/**
 * Stop writing the log: its reader is gone (a worker whose primary, which relayed its lines, was
 * killed). The destination's lines are dropped from now on and nothing is flushed at exit: a
 * synchronous flush to a pipe whose reader is gone retries its EPIPE forever (sonic-boom's
 * flushSync sleeps and retries on any error), which left orphaned workers hung with their stdio
 * children alive.
 */
export function muteLog(log: Logger): void {
  log.level = 'silent';
  const stream = (log as unknown as Record<symbol, Record<string, unknown> | undefined>)[pino.symbols.streamSym];
  if (!stream) return;
  const drop = (): boolean => true;
  stream['write'] = drop;
  stream['flush'] = drop;
  stream['flushSync'] = drop;
  stream['end'] = drop;
}
