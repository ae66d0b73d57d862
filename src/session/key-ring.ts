// The session-token key ring: the newest key seals, every listed key opens. Keys are 32 random
// bytes, written base64url; each key's id is derived from the key itself, so replicas given the
// same keys agree on ids without configuring any.
import { createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

export interface SessionKey {
  /** 4 bytes that name the key inside each token. */
  readonly id: Buffer;
  /** A KeyObject, not raw bytes: createCipheriv with one is ~2.5× faster (no key import per call). */
  readonly key: KeyObject;
  /** Derived from the key: the HMAC key of deterministic (synthetic) nonces, never the AES key itself. */
  readonly nonceKey: Buffer;
}

export class KeyRingError extends Error {}

export class KeyRing {
  readonly keys: readonly SessionKey[];
  /** True when the ring was generated at start (sessions die with the process). */
  readonly ephemeral: boolean;
  private readonly byId: Map<number, SessionKey>;

  constructor(keys: readonly Buffer[], ephemeral = false) {
    if (keys.length === 0) throw new KeyRingError('the session key ring is empty');
    this.keys = keys.map((key, i) => {
      if (key.length !== 32)
        throw new KeyRingError(`session key ${i + 1} is ${key.length} bytes; keys are 32 bytes (base64url)`);
      return {
        id: keyId(key),
        key: createSecretKey(Buffer.from(key)),
        nonceKey: createHash('sha256').update('sluice synthetic nonce\0').update(key).digest(),
      };
    });
    this.byId = new Map();
    for (const k of this.keys) {
      const n = k.id.readUInt32BE(0);
      if (this.byId.has(n)) throw new KeyRingError('the session key ring lists the same key twice');
      this.byId.set(n, k);
    }
    this.ephemeral = ephemeral;
  }

  get sealing(): SessionKey {
    return this.keys[0] as SessionKey;
  }

  find(id: number): SessionKey | undefined {
    return this.byId.get(id);
  }

  /** Parse "k1,k2,…" (base64url, newest first), as SLUICE_SESSION_KEYS carries it. */
  static parse(list: string): KeyRing {
    const parts = list
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    return new KeyRing(
      parts.map((p, i) => {
        if (!/^[A-Za-z0-9_-]+={0,2}$/.test(p)) throw new KeyRingError(`session key ${i + 1} is not base64url`);
        return Buffer.from(p, 'base64url');
      }),
    );
  }

  static generate(): KeyRing {
    return new KeyRing([randomBytes(32)], true);
  }
}

export function newKeyText(): string {
  // base64url may start with '-', and such a key after `--keys` reads as an option to the command
  // line (and to most shells' tools): drawn again, at a cost of 1/64 of the key space (0.02 bits).
  for (;;) {
    const text = randomBytes(32).toString('base64url');
    if (!text.startsWith('-')) return text;
  }
}

function keyId(key: Buffer): Buffer {
  return createHash('sha256').update('sluice session key id\0').update(key).digest().subarray(0, 4);
}
