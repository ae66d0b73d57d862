// Hides what the route's policy denies from list answers (tools/list, prompts/list,
// resources/list, resources/templates/list), in JSON bodies and in SSE events alike: a message
// rewrite over the shared JSON-RPC rewriter.
import type { Principal } from '../security/principal.ts';
import type { ToolPolicy } from '../security/tool-policy.ts';
import { isJsonObject, JsonMessageRewriter } from '../transport/json-message-rewriter.ts';

export class ListFilter extends JsonMessageRewriter {
  constructor(policy: ToolPolicy, who: Principal | undefined, sse: boolean) {
    super(
      sse,
      ['"result"'],
      (msg) => {
        const result = msg['result'];
        if (!isJsonObject(result)) return undefined;
        const filtered = policy.filterResult(result, who);
        return filtered ? { msg: { ...msg, result: filtered } } : undefined;
      },
      'filter',
    );
  }
}
