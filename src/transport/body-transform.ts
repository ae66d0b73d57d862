// The one contract every response-body rewriter and observer implements (the list filter, the
// HTTP+SSE endpoint rewrite, the payload tap), so the forwarding loop runs them as one chain in the
// order the response stages attached them, and knows nothing of what each does.
export interface BodyTransform {
  /**
   * Bytes to send on now (possibly none while it holds an unfinished event or body). Throws when the body cannot be
   * judged; the exchange then ends.
   */
  push(chunk: Buffer): Buffer;
  /** The end of the body: whatever it still holds. */
  end(): Buffer;
}

const EMPTY: Buffer = Buffer.alloc(0);

/** Runs transforms in order: each one's output is the next one's input. */
export class TransformChain implements BodyTransform {
  private readonly steps: readonly BodyTransform[];

  constructor(steps: readonly BodyTransform[]) {
    this.steps = steps;
  }

  push(chunk: Buffer): Buffer {
    for (const t of this.steps) {
      if (chunk.length === 0) return chunk;
      chunk = t.push(chunk);
    }
    return chunk;
  }

  end(): Buffer {
    let carry: Buffer = EMPTY;
    for (const t of this.steps) {
      const pushed = carry.length > 0 ? t.push(carry) : EMPTY;
      const rest = t.end();
      carry = rest.length === 0 ? pushed : pushed.length === 0 ? rest : Buffer.concat([pushed, rest]);
    }
    return carry;
  }
}

/** The one transform that runs `steps` in order, or undefined when there are none. */
export function chainOf(steps: readonly BodyTransform[]): BodyTransform | undefined {
  return steps.length === 0 ? undefined : steps.length === 1 ? steps[0] : new TransformChain(steps);
}
