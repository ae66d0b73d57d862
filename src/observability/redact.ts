// Redaction of JSON-RPC payloads before they are logged. What a rule or a detector matches is
// replaced; everything else stays readable, so the log is still useful for debugging:
//   - field names (case-insensitive, `-`/`_` ignored): the defaults (credentials, tokens,
//     cookies, session ids) plus the route's own, anywhere in the message;
//   - JSON paths: `params.arguments.ssn`, `result.content[*].text`, `**.card_number`;
//   - hash rules (fields or paths): a keyed hash instead of the value, so equal values correlate;
//   - secret detectors on every string: private keys, JWTs, bearer/basic credentials, passwords
//     in URLs, common API-key shapes → a typed marker such as [REDACTED:jwt];
//   - long strings and arrays are cut, with the original size recorded.
import { createHmac } from 'node:crypto';

export interface RedactionRules {
  /** Field names to replace, beyond the defaults. */
  fields: readonly string[];
  /** JSON paths to replace. */
  paths: readonly string[];
  hashFields: readonly string[];
  hashPaths: readonly string[];
  /** Run the secret detectors on string values. */
  detectors: boolean;
  maxString: number;
  maxArray: number;
}

const norm = (name: string): string => name.toLowerCase().replace(/[-_]/g, '');

export const DEFAULT_REDACTED_FIELDS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'client_secret',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'api_key',
  'apikey',
  'x-api-key',
  'private_key',
  'credential',
  'credentials',
  'session_id',
  'mcp-session-id',
];

const DETECTORS: [RegExp, string][] = [
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, '[REDACTED:private-key]'],
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, '[REDACTED:jwt]'],
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/-]{6,}=*/gi, '$1 [REDACTED:credential]'],
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/]+:)[^\s@/]+@/gi, '$1[REDACTED:url-password]@'],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, '[REDACTED:api-key]'],
  [/\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/g, '[REDACTED:api-key]'],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/g, '[REDACTED:api-key]'],
  [/\b[rs]k_(?:live|test)_[A-Za-z0-9]{10,}/g, '[REDACTED:api-key]'],
  [/\bsk-[A-Za-z0-9_-]{16,}/g, '[REDACTED:api-key]'],
  [/\bAIza[0-9A-Za-z_-]{35}\b/g, '[REDACTED:api-key]'],
  // An AWS secret access key (40 characters) after its name, in env, ini, JSON or YAML spelling.
  [/(secret[_-]?access[_-]?key["']?\s*[=:]\s*["']?)[A-Za-z0-9/+]{40}/gi, '$1[REDACTED:aws-secret]'],
  // A JSON member whose name says secret: "client_secret": "…", "api_key": "…", "password": "…".
  [
    /("[a-z0-9_-]*(?:secret|password|passwd|token|api[_-]?key|apikey|private[_-]?key|credential)[a-z0-9_-]*"\s*:\s*")(?:[^"\\]|\\.)*"/gi,
    '$1[REDACTED:json-secret]"',
  ],
  [/\b(password|passwd|pwd|secret|api[_-]?key|token)(\s*[=:]\s*)[^\s&,;"']+/gi, '$1$2[REDACTED:assignment]'],
];

/**
 * Redacts a stream of lines (a stdio child's stderr) where a secret may span several: every line
 * of a PEM private key block, from its BEGIN line to its END line, is replaced, not only the
 * first. One per stream.
 */
export function lineRedactor(): (line: string) => string {
  let inKey = false;
  return (line) => {
    if (inKey) {
      if (/-----END [A-Z0-9 ]*PRIVATE KEY-----/.test(line)) inKey = false;
      return '[REDACTED:private-key]';
    }
    if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(line) && !/-----END [A-Z0-9 ]*PRIVATE KEY-----/.test(line)) {
      inKey = true;
      return '[REDACTED:private-key]';
    }
    return detectSecrets(line);
  };
}

/** Replace what the detectors recognise in one string. */
export function detectSecrets(s: string): string {
  let out = s;
  for (const [re, marker] of DETECTORS) {
    re.lastIndex = 0;
    out = out.replace(re, marker);
  }
  return out;
}

type Segment = string | '*' | '**';

function compilePath(path: string): Segment[] {
  return path
    .replace(/^\$\.?/, '')
    .replace(/\[(\*|\d+)\]/g, '.$1')
    .split('.')
    .filter((s) => s.length > 0);
}

function matches(pattern: readonly Segment[], path: readonly string[], pi = 0, qi = 0): boolean {
  if (pi === pattern.length) return qi === path.length;
  const p = pattern[pi];
  if (p === '**') {
    for (let k = qi; k <= path.length; k++) if (matches(pattern, path, pi + 1, k)) return true;
    return false;
  }
  if (qi === path.length) return false;
  return (p === '*' || p === path[qi]) && matches(pattern, path, pi + 1, qi + 1);
}

const MAX_DEPTH = 32;

export class Redactor {
  private readonly fields: Set<string>;
  private readonly hashFields: Set<string>;
  private readonly paths: Segment[][];
  private readonly hashPaths: Segment[][];
  private readonly rules: RedactionRules;
  private readonly hashKey: Buffer;

  constructor(rules: RedactionRules, hashKey: Buffer) {
    this.rules = rules;
    this.hashKey = hashKey;
    this.fields = new Set([...DEFAULT_REDACTED_FIELDS, ...rules.fields].map(norm));
    this.hashFields = new Set(rules.hashFields.map(norm));
    this.paths = rules.paths.map(compilePath);
    this.hashPaths = rules.hashPaths.map(compilePath);
  }

  /** A redacted copy of `value` (the input is not changed). */
  redact(value: unknown): unknown {
    return this.walk(value, [], undefined);
  }

  private hash(value: unknown): string {
    return `[HASH:${createHmac('sha256', this.hashKey)
      .update(JSON.stringify(value) ?? 'undefined')
      .digest('hex')
      .slice(0, 16)}]`;
  }

  private walk(value: unknown, path: string[], key: string | undefined): unknown {
    if (key !== undefined) {
      const k = norm(key);
      // Hash rules are the operator's explicit choice: they win over the default field names.
      if (this.hashFields.has(k) || this.hashPaths.some((p) => matches(p, path))) return this.hash(value);
      if (this.fields.has(k) || this.paths.some((p) => matches(p, path))) return '[REDACTED]';
    } else if (path.length > 0) {
      if (this.hashPaths.some((p) => matches(p, path))) return this.hash(value);
      if (this.paths.some((p) => matches(p, path))) return '[REDACTED]';
    }
    if (typeof value === 'string') {
      const s = this.rules.detectors ? detectSecrets(value) : value;
      return s.length > this.rules.maxString ? `${s.slice(0, this.rules.maxString)}…[${value.length} chars]` : s;
    }
    if (value === null || typeof value !== 'object') return value;
    if (path.length >= MAX_DEPTH) return '[…nested deeper than 32 levels]';
    if (Array.isArray(value)) {
      const kept = value.slice(0, this.rules.maxArray).map((v, i) => this.walk(v, [...path, String(i)], undefined));
      if (value.length > this.rules.maxArray) kept.push(`…[${value.length} items]`);
      return kept;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>))
      out[this.rules.detectors ? detectSecrets(k) : k] = this.walk(v, [...path, k], k);
    return out;
  }
}
