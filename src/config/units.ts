// Human-friendly durations ("15s", "5m", "250ms") and sizes ("4MiB", "16KiB") for the config file.
import { z } from 'zod';

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/;
const SIZE_BYTES: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

export function parseDuration(v: string): number | undefined {
  const m = DURATION.exec(v.trim());
  if (!m?.[1] || !m[2]) return undefined;
  return Math.round(Number(m[1]) * (DURATION_MS[m[2]] ?? NaN));
}

export function parseSize(v: string): number | undefined {
  const m = SIZE.exec(v.trim());
  if (!m?.[1]) return undefined;
  return Math.round(Number(m[1]) * (SIZE_BYTES[m[2] ?? 'B'] ?? NaN));
}

/** A duration in milliseconds: a number (ms) or a string with unit. 0 disables where documented. */
export const duration = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 250ms, 15s, 5m, 1h)` });
    return z.NEVER;
  }
  return ms;
});

/** A size in bytes: a number or a string with unit. */
export const size = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const bytes = parseSize(v);
  if (bytes === undefined || bytes <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (use e.g. 4MiB, 16KiB, 1024)` });
    return z.NEVER;
  }
  return bytes;
});
