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

/** A flag whose name says its value is a secret (`--api-key`, `--token=…`, `-password`). */
const SECRET_FLAG =
  /^--?[a-z0-9_-]*(token|secret|password|passwd|passphrase|credential|api[_-]?key|apikey|auth)[a-z0-9_-]*$/i;
/** A value that is itself a known credential shape (a JWT, a provider's API key, a bearer header). */
const CREDENTIAL =
  /^(eyJ[\w-]{4,}\.[\w-]{4,}\.|(AKIA|ASIA)[0-9A-Z]{16}$|gh[pousr]_\w{30,}|github_pat_|xox[abprs]-|[rs]k_(live|test)_|sk-[\w-]{16,}|AIza[\w-]{35}$|(Bearer|Basic|Token)\s)/i;

/**
 * A stdio server's arguments as they may be shown (the start banner, the admin page): the value of
 * a flag whose name says secret (`--api-key X`, `--token=X`), and any argument shaped like a known
 * credential, become the mask; everything else (the package, paths, ordinary flags) stays.
 */
export function maskedArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const eq = a.indexOf('=');
    if (a.startsWith('-') && eq > 0 && SECRET_FLAG.test(a.slice(0, eq))) out.push(`${a.slice(0, eq)}=${MASK}`);
    else if (CREDENTIAL.test(a)) out.push(MASK);
    else {
      out.push(withoutUserInfo(a));
      if (SECRET_FLAG.test(a) && i + 1 < args.length) {
        out.push(MASK);
        i++;
      }
    }
  }
  return out;
}

function mask(v: unknown, name: string | undefined, inSecretMap: boolean): unknown {
  if (v === null || v === undefined) return v;
  const secretName = name !== undefined && SECRET_NAME.test(name) && !/Env$/.test(name);
  // A stdio server's argv: secret flags' values masked, the rest shown.
  if (Array.isArray(v) && name === 'args' && v.every((x) => typeof x === 'string')) return maskedArgs(v as string[]);
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
