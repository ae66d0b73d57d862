// What every check gets: the peer to talk through, the session the opening established (if
// any), whether `sluice probe` answers behind the path, and the run's options.
import type { JsonObject, McpPeer, PostOptions, RpcExchange, Session } from './mcp-peer.ts';
import { toolText } from './mcp-peer.ts';
import { result, type CheckId, type CheckResult, type StreamTimeline } from './report.ts';

export interface DoctorOptions {
  /** Keep the run under 30 s: short idle check, fewer sessions. */
  quick: boolean;
  /** Silences to survive, in seconds. Default: quick [10], full [60, 100, 130]. */
  idleSeconds?: number[];
  /** Origin for the CORS checks. Default https://sluice-doctor.example. */
  origin?: string;
  /** Sent on every request (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Sessions the affinity check opens. Default quick 6, full 12. */
  sessions?: number;
  insecure?: boolean;
  caFile?: string;
}

export interface DoctorContext {
  peer: McpPeer;
  opts: DoctorOptions;
  /** A session whose requests are answered (absent for stateless or broken paths). */
  session?: Session;
  /** Why there is no session, for the checks that need one. */
  noSession: string;
  /** The instance that created `session`, when the probe answers. */
  instance?: string;
  /**
   * Calls a probe tool the way this path carries it: within the session, or as stateless
   * 2026-07-28 requests when sessions do not work (the probe answers both).
   */
  call?: Caller;
  /** Whether `call` is stateless, and the MCP-Protocol-Version its requests carry. */
  stateless: boolean;
  callVersion: string;
  /** Round trip of a plain request in the session, ms: the baseline for lateness. */
  rttMs: number;
  /** Sessions the run opened, closed at the end. */
  opened: Session[];
  /** Probe instances that answered. */
  instances: Set<string>;
  /** Streams watched, for the HTML report's timeline. */
  timelines: StreamTimeline[];
}

export type Caller = (
  name: string,
  args: JsonObject,
  opts?: PostOptions & { progress?: boolean },
) => Promise<RpcExchange>;

export const NOT_PROBE = 'needs `sluice probe` behind this path (a plain MCP server cannot report what reached it)';

export const PROBE_PREFIX = 'sluice-probe-';

export function probeInstanceOf(serverName: string): string | undefined {
  return serverName.startsWith(PROBE_PREFIX) ? serverName.slice(PROBE_PREFIX.length) : undefined;
}

export function skipAll(ids: CheckId[], why: string): CheckResult[] {
  return ids.map((id) => result(id, 'skip', why));
}

export interface ProbeInfo {
  instance: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The probe_info / probe_requests answer, when the call got one. */
export function probeAnswer<T>(ex: RpcExchange): T | undefined {
  const text = toolText(ex);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
