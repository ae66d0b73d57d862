// Federated names each way: what the client sees of each server's names, URIs and task ids, and
// the server and own name every client-sent name resolves to (federation-names.ts, -rewrite.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { Namespace, openCursor, sealCursor, type CursorBinding } from '../../../src/broker/federation-names.ts';
import { KeyRing } from '../../../src/session/key-ring.ts';
import { hashPrincipal } from '../../../src/session/token.ts';
import { clientNotification, clientResult, routeRequest } from '../../../src/broker/federation-rewrite.ts';

const github = { name: 'github', prefix: 'github' };
const web = { name: 'search', prefix: 'web' };
const bare = { name: 'local', prefix: '' };
const ns = new Namespace([github, web, bare], '__');

describe('federation names', () => {
  it('a prefixed name and URI round-trip to their server and own name', () => {
    assert.equal(ns.name(github, 'create_issue'), 'github__create_issue');
    assert.deepEqual(ns.ownerOfName('github__create_issue'), { member: github, own: 'create_issue' });
    assert.deepEqual(ns.ownerOfName('web__q__x'), { member: web, own: 'q__x' }, 'only the first separator splits');
    assert.equal(ns.uri(web, 'https://example.test/a?b'), 'web+https://example.test/a?b');
    assert.deepEqual(ns.ownerOfUri('web+https://example.test/a?b'), { member: web, own: 'https://example.test/a?b' });
    assert.deepEqual(ns.ownerOfUri('git+ssh://host/repo'), { member: bare, own: 'git+ssh://host/repo' }, 'a scheme with + stays with the bare server');
  });

  it('a name both prefixes could claim goes to the longer one (a config loaded without validation stays right)', () => {
    const a = { name: 'a', prefix: 'a' };
    const aDash = { name: 'a-', prefix: 'a-' };
    const overlapping = new Namespace([a, aDash], '--');
    assert.deepEqual(overlapping.ownerOfName('a---whoami'), { member: aDash, own: 'whoami' });
    assert.deepEqual(overlapping.ownerOfName('a--whoami'), { member: a, own: 'whoami' });
  });

  it('the bare server owns what no prefix claims, and its names that read as another server’s are hidden', () => {
    assert.deepEqual(ns.ownerOfName('echo'), { member: bare, own: 'echo' });
    assert.equal(ns.shadowed(bare, 'github__x', 'name'), true);
    assert.equal(ns.shadowed(bare, 'echo', 'name'), false);
    const noBare = new Namespace([github], '__');
    assert.equal(noBare.ownerOfName('echo'), undefined);
    assert.throws(() => noBare.requireName('echo', 'tool'), (e: { code?: number; message: string }) => e.code === -32602 && /Unknown tool: echo/.test(e.message));
    assert.throws(() => noBare.requireUri('file:///x'), (e: { code?: number; data?: { uri?: string } }) => e.code === -32602 && e.data?.uri === 'file:///x');
  });

  it('cursors are sealed to the route, session and caller; forged, foreign or over-wide ones are -32602 (issue 32, item 8)', () => {
    const ring = new KeyRing([randomBytes(32)]);
    const servers = ['github', 'search'];
    const b: CursorBinding = { ring: () => ring, route: '/team', session: 's1', caller: hashPrincipal('p:alice') };
    const c = sealCursor(b, [['github', 'abc'], ['search', '{"p":2}']]);
    assert.ok(c && !c.includes('abc'), 'a server’s own cursor is not readable in the merged one');
    assert.deepEqual(openCursor(b, c, servers), [['github', 'abc'], ['search', '{"p":2}']]);
    assert.equal(sealCursor(b, []), undefined);
    assert.equal(openCursor(b, undefined, servers), undefined);
    const invalid = (e: { code?: number }) => e.code === -32602;
    // Another session, another caller, another route, another key: none opens it.
    assert.throws(() => openCursor({ ...b, session: 's2' }, c, servers), invalid);
    assert.throws(() => openCursor({ ...b, caller: hashPrincipal('p:mallory') }, c, servers), invalid);
    assert.throws(() => openCursor({ ...b, caller: undefined }, c, servers), invalid);
    assert.throws(() => openCursor({ ...b, route: '/other' }, c, servers), invalid);
    assert.throws(() => openCursor({ ...b, ring: () => new KeyRing([randomBytes(32)]) }, c, servers), invalid);
    // The old unsealed form, and 5,000 servers named in a cursor, are refused without asking anyone.
    const forged = Buffer.from(JSON.stringify({ v: 1, rest: Array.from({ length: 5000 }, () => ['github', 'x']) })).toString('base64url');
    assert.throws(() => openCursor(b, forged, servers), invalid);
    const repeated = sealCursor(b, [['github', 'a'], ['github', 'b']]);
    assert.throws(() => openCursor(b, repeated, servers), invalid, 'a server named twice');
    const unknown = sealCursor(b, [['gone', 'a']]);
    assert.throws(() => openCursor(b, unknown, servers), invalid, 'a server the route no longer has');
    for (const bad of ['x', 42, 'A'.repeat(200_000)]) assert.throws(() => openCursor(b, bad, servers), invalid);
  });
});

describe('federated messages', () => {
  it('requests go to the server their target names, in its own names', () => {
    assert.deepEqual(routeRequest(ns, 'tools/call', { name: 'github__create_issue', arguments: { a: 1 } }), { member: github, params: { name: 'create_issue', arguments: { a: 1 } } });
    assert.deepEqual(routeRequest(ns, 'resources/subscribe', { uri: 'web+res://1' }), { member: web, params: { uri: 'res://1' } });
    assert.deepEqual(routeRequest(ns, 'completion/complete', { ref: { type: 'ref/prompt', name: 'web__p' }, argument: { name: 'a', value: 'x' } })?.params, { ref: { type: 'ref/prompt', name: 'p' }, argument: { name: 'a', value: 'x' } });
    assert.deepEqual(routeRequest(ns, 'completion/complete', { ref: { type: 'ref/resource', uri: 'github+repo://{id}' } })?.params, { ref: { type: 'ref/resource', uri: 'repo://{id}' } });
    assert.deepEqual(routeRequest(ns, 'tasks/get', { taskId: 'github__t-1' }), { member: github, params: { taskId: 't-1' } });
    assert.equal(routeRequest(ns, 'ping', {}), undefined);
  });

  it('results and notifications come back in the client’s names', () => {
    assert.deepEqual(clientResult(ns, github, 'tools/list', { tools: [{ name: 'a' }], nextCursor: 'n' }), { tools: [{ name: 'github__a' }], nextCursor: 'n' });
    assert.deepEqual(clientResult(ns, web, 'resources/templates/list', { resourceTemplates: [{ uriTemplate: 'r://{x}' }] }), { resourceTemplates: [{ uriTemplate: 'web+r://{x}' }] });
    assert.deepEqual(clientResult(ns, web, 'resources/read', { contents: [{ uri: 'r://1', text: 't' }] }), { contents: [{ uri: 'web+r://1', text: 't' }] });
    const call = clientResult(ns, github, 'tools/call', {
      content: [{ type: 'text', text: 'x' }, { type: 'resource_link', uri: 'repo://1', name: 'n' }, { type: 'resource', resource: { uri: 'repo://2', text: 'y' } }],
    });
    assert.deepEqual(call, { content: [{ type: 'text', text: 'x' }, { type: 'resource_link', uri: 'github+repo://1', name: 'n' }, { type: 'resource', resource: { uri: 'github+repo://2', text: 'y' } }] });
    assert.deepEqual(clientResult(ns, github, 'tools/call', { task: { taskId: 't-1', status: 'working' } }), { task: { taskId: 'github__t-1', status: 'working' } });
    assert.deepEqual(clientResult(ns, github, 'tasks/list', { tasks: [{ taskId: 't-1' }] }), { tasks: [{ taskId: 'github__t-1' }] });
    assert.deepEqual(clientNotification(ns, web, 'notifications/resources/updated', { uri: 'r://1' }), { uri: 'web+r://1' });
    assert.deepEqual(clientNotification(ns, github, 'notifications/tasks/status', { taskId: 't', status: 'completed' }), { taskId: 'github__t', status: 'completed' });
    assert.deepEqual(clientResult(ns, bare, 'tools/list', { tools: [{ name: 'a' }] }), { tools: [{ name: 'a' }] }, 'the bare server’s names stay');
  });
});
