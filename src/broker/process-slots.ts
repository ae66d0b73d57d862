// The one count of a stdio server's processes (its maxProcesses): every live child, whatever it
// is for (a 2025 session's, a bridged caller's pooled session, the era probe, a federated
// session's member) and whatever it is doing (starting, serving, stopping), holds a slot from
// spawn until it has exited and been reaped. A child still stopping after SIGTERM still counts:
// otherwise churn of sessions whose children are slow to stop runs far past the bound. One caller
// (a principal, or a credential) holds at most its share, so it cannot take every slot.
import type { StdioConfig } from '../config/schema.ts';
import { SluiceError } from '../core/errors.ts';
import { isAnonymous } from './bridge-common.ts';

export interface Slot {
  /** Gives the slot back (once; later calls do nothing). */
  release(): void;
}

export class ProcessSlots {
  private readonly max: number;
  private readonly share: number;
  private readonly what: string;
  private taken = 0;
  private readonly byCaller = new Map<string, number>();

  /** `what` names the server in refusals ("route /mcp", "federated server \"local\""). */
  constructor(max: number, share: number, what: string) {
    this.max = max;
    this.share = Math.max(1, Math.min(share, max));
    this.what = what;
  }

  /** Live children now (starting, serving, stopping). */
  get running(): number {
    return this.taken;
  }

  get limit(): number {
    return this.max;
  }

  /**
   * A slot for a child `caller` starts, or a 503 (Retry-After: 1) naming the bound. An anonymous
   * caller is new at each request (bridge-common callerKey), so only the total bounds anonymous
   * callers; Sluice's own children (the era probe) pass `undefined`.
   */
  take(caller: string | undefined): Slot {
    if (this.taken >= this.max)
      throw new SluiceError(
        'SLUICE_ERR_BROKER_FULL',
        `${this.what}: ${this.max} processes running or stopping (maxProcesses)`,
        { headers: { 'retry-after': '1' } },
      );
    const counted = caller !== undefined && !isAnonymous(caller) ? caller : undefined;
    if (counted !== undefined && (this.byCaller.get(counted) ?? 0) >= this.share)
      throw new SluiceError(
        'SLUICE_ERR_BROKER_FULL',
        `${this.what}: this caller holds ${this.share} processes, its share (maxProcessesPerCaller)`,
        { headers: { 'retry-after': '1' } },
      );
    this.taken++;
    if (counted !== undefined) this.byCaller.set(counted, (this.byCaller.get(counted) ?? 0) + 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.taken--;
        if (counted === undefined) return;
        const n = (this.byCaller.get(counted) ?? 1) - 1;
        if (n > 0) this.byCaller.set(counted, n);
        else this.byCaller.delete(counted);
      },
    };
  }
}

/** A caller's share of a stdio server's processes: `maxProcessesPerCaller`, by default half the bound (rounded up). */
export function perCallerShare(cfg: StdioConfig): number {
  return cfg.maxProcessesPerCaller ?? Math.ceil(cfg.maxProcesses / 2);
}
