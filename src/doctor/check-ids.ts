// The doctor's stable check ids, in the order they are printed, with their titles. Shared by the
// report and the fixes (so neither imports the other).
export const CHECKS = {
  'no-redirect': 'POST to the MCP URL is answered, not redirected',
  'session-id-roundtrip': 'Mcp-Session-Id reaches the client and comes back',
  'notification-202': 'Notifications are answered 202 Accepted',
  'protocol-version-forwarded': 'MCP-Protocol-Version reaches the server',
  'authorization-forwarded': 'Authorization reaches the server',
  'accept-forwarded': 'Accept keeps application/json and text/event-stream',
  'host-forwarded': 'The public Host reaches the server',
  'mcp-param-forwarded': 'Mcp-Method, Mcp-Name and Mcp-Param-* reach the server (2026-07-28)',
  'sse-unbuffered': 'SSE events arrive as they are sent',
  'sse-compression': 'SSE responses are not compressed',
  'idle-survival': 'Silent streams survive long tool calls',
  resume: 'A cut stream resumes with Last-Event-ID',
  'last-event-id-forwarded': 'Last-Event-ID reaches the server',
  affinity: 'Every request of a session reaches the replica that holds it',
  'unknown-session-404': 'An unknown session is answered 404',
  'method-405': '405 Method Not Allowed passes through',
  'error-body-intact': 'JSON-RPC error bodies pass unchanged',
  'cors-preflight': 'The CORS preflight allows the MCP request headers',
  'cors-expose-session-id': 'CORS exposes Mcp-Session-Id and WWW-Authenticate',
  'oauth-discovery': 'OAuth discovery works through the path (challenge, protected-resource metadata)',
  'body-limit': 'Tool calls of 1 MiB and 4 MiB get through',
} as const;

export type CheckId = keyof typeof CHECKS;
