// Name globs for policy rules and rate limits: `*` is any run of characters (slashes too, since
// tool names and resource URIs are not paths), `?` one character; everything else is literal.

export type NameMatcher = (name: string) => boolean;

export function globMatcher(patterns: readonly string[]): NameMatcher {
  const exact = new Set<string>();
  const wild: RegExp[] = [];
  for (const p of patterns) {
    if (!/[*?]/.test(p)) exact.add(p);
    else
      wild.push(
        new RegExp(
          `^${p
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '.*')
            .replace(/\?/g, '.')}$`,
          's',
        ),
      );
  }
  return (name) => exact.has(name) || wild.some((r) => r.test(name));
}
