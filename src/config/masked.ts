// The running config as the admin page shows it: every value that may be a secret replaced by a
// mark of its length class, so an operator sees the shape and the names without the values.
// Masked: fields whose names say secret (token, secret, password, key, credential, cookie, value,
// sha256, authorization …), every value of an `env` or `headers` map (a child's environment and
// extra upstream headers carry API keys by habit), the session and log-hash key material, and
// the user-info part of any URL. Names of environment variables (`…Env`) stay: they are not secrets.

const SECRET_NAME =
  /(token|secret|password|passwd|passphrase|credential|cookie|authorization|apikey|api_key|sha256|keys?$|^value$)/i;
const MAP_OF_SECRETS = new Set(['env', 'headers', 'setHeaders', 'requestHeaders']);
export const MASK = '••••••';

export function maskedConfig(config: unknown): unknown {
  return mask(config, undefined, false);
}

function mask(v: unknown, name: string | undefined, inSecretMap: boolean): unknown {
  if (v === null || v === undefined) return v;
  const secretName = name !== undefined && SECRET_NAME.test(name) && !/Env$/.test(name);
  if (Array.isArray(v)) return v.map((x) => mask(x, secretName ? 'key' : undefined, inSecretMap));
  if (typeof v === 'object') {
    if (v instanceof RegExp) return String(v);
    const out: Record<string, unknown> = {};
    const isMap = name !== undefined && MAP_OF_SECRETS.has(name);
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = mask(x, isMap ? 'value' : k, isMap);
    return out;
  }
  if (typeof v === 'string') {
    if (secretName || inSecretMap) return v === '' ? '' : MASK;
    return withoutUserInfo(v);
  }
  if ((secretName || inSecretMap) && typeof v !== 'boolean') return MASK;
  return v;
}

/** `scheme://user:pass@host/…` → `scheme://••••••@host/…`; other strings unchanged. */
function withoutUserInfo(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, `$1${MASK}@`);
}
