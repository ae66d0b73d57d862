// `sluice check-upstream URL [--resolve host=ip[,ip]]… [--trusted]`: would Sluice connect there?
// Prints `allowed` or `refused: <rule> (<why>)`; exit 0 or 1. Judged with the strict policy of
// user-registered upstreams unless --trusted asks for that of routes written in the config file.
import { parseArgs } from 'node:util';
import { RULE_TEXT, STRICT, TRUSTED } from '../security/address-policy.ts';
import { checkUpstream, systemResolver, type Resolver } from '../transport/guarded-connect.ts';

export async function runCheckUpstream(args: string[], usage: (message: string) => never): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { resolve: { type: 'string', multiple: true }, trusted: { type: 'boolean' } },
    strict: true,
  });
  const url = positionals[0];
  if (!url || positionals.length > 1) usage('check-upstream needs exactly one URL');
  let resolver: Resolver = systemResolver;
  if (values.resolve) {
    // --resolve replaces DNS entirely: a name it does not list does not resolve.
    const answers = new Map<string, string[]>();
    for (const r of values.resolve) {
      const m = /^([^=]+)=(.+)$/.exec(r);
      if (!m) usage(`--resolve "${r}" is not host=ip[,ip]`);
      answers.set(
        m[1]!.toLowerCase().replace(/\.$/, ''),
        m[2]!.split(',').map((a) => a.trim()),
      );
    }
    resolver = async (host) => answers.get(host) ?? [];
  }
  const verdict = await checkUpstream(url, values.trusted ? TRUSTED : STRICT, resolver);
  if (verdict.ok) {
    process.stdout.write('allowed\n');
    return;
  }
  process.stdout.write(`refused: ${verdict.rule} (${RULE_TEXT[verdict.rule]})\n`);
  process.exitCode = 1;
}
