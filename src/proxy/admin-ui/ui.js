// Sluice admin page. One snapshot of the gateway a second over /ui/events (EventSource: the
// sign-in cookie goes with it); everything is drawn with DOM nodes and textContent, never HTML
// from data, so nothing the gateway saw (paths, client strings) can script the page.
'use strict';

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) n.setAttribute(k, String(v));
  for (const c of children) n.append(c instanceof Node ? c : document.createTextNode(c === undefined || c === null ? '' : String(c)));
  return n;
}

function cell(value, cls) {
  return el('td', cls ? { class: cls } : {}, value);
}

function fill(tbody, rows, columns, emptyText) {
  const body = $(tbody);
  body.replaceChildren();
  if (rows.length === 0) {
    body.append(el('tr', {}, el('td', { colspan: columns, class: 'empty' }, emptyText)));
    return;
  }
  for (const r of rows) body.append(r);
}

const fmt = (n, digits = 0) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: digits }));

// A small line chart of the last minute: requests per second, and mean latency dashed.
function spark(series, label) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', '0 0 120 30');
  svg.setAttribute('role', 'img');
  const total = series.reduce((a, p) => a + p.requests, 0);
  const title = document.createElementNS(NS, 'title');
  title.textContent = `${label}: ${total} requests in the last ${series.length} seconds`;
  svg.setAttribute('aria-label', title.textContent);
  svg.append(title);
  const line = (values, cls) => {
    const max = Math.max(1, ...values);
    const step = 120 / Math.max(1, values.length - 1);
    const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(28 - (v / max) * 26).toFixed(1)}`).join(' ');
    const pl = document.createElementNS(NS, 'polyline');
    pl.setAttribute('points', pts);
    if (cls) pl.setAttribute('class', cls);
    svg.append(pl);
  };
  line(series.map((p) => p.requests));
  line(series.map((p) => p.meanMs ?? 0), 'latency');
  return svg;
}

function render(s) {
  $('#status').textContent = s.notReady.length ? `Not ready: ${s.notReady.join('; ')}` : `Ready · updated ${new Date(s.at).toLocaleTimeString()}`;
  const facts = $('#process');
  facts.replaceChildren();
  for (const [k, v] of [['PID', s.pid], ['Up', `${fmt(s.uptimeS)} s`], ['RSS', `${fmt(s.rssMiB, 1)} MiB`], ['Routes', s.routes.length]]) {
    facts.append(el('div', {}, el('dt', {}, k), el('dd', {}, v)));
  }
  fill(
    '#routes-table tbody',
    s.routes.map((r) =>
      el(
        'tr',
        { 'data-route': r.path },
        el('th', { scope: 'row' }, r.path),
        cell(r.kind),
        cell(fmt(r.requestsTotal), 'num requests'),
        cell(fmt(r.rps), 'num rps'),
        cell(r.meanMs === null ? '–' : `${fmt(r.meanMs, 1)} ms`, 'num latency'),
        cell(fmt(r.streamsOpen), 'num streams'),
        cell(r.processes ? `${r.processes.running} / ${r.processes.max}` : '–', 'num'),
        el('td', {}, spark(r.series, r.path)),
      ),
    ),
    8,
    'No routes',
  );
  const replicas = s.routes.flatMap((r) => r.replicas.map((p) => ({ route: r.path, ...p })));
  fill(
    '#replicas-table tbody',
    replicas.map((p) =>
      el(
        'tr',
        { 'data-route': p.route, 'data-replica': p.id },
        cell(p.route),
        el('th', { scope: 'row' }, p.server ? `${p.server} / ${p.id}` : p.id),
        cell(p.url),
        el('td', {}, el('span', { class: `state state-${p.state}` }, p.state)),
        cell(fmt(p.inFlight), 'num'),
        cell(fmt(p.streams), 'num streams'),
        cell(fmt(p.sessions), 'num sessions'),
      ),
    ),
    7,
    'No HTTP replicas (stdio routes run processes)',
  );
  fill(
    '#refusals-table tbody',
    s.refusals.map((f) =>
      el(
        'tr',
        { 'data-reason': f.reason },
        cell(new Date(f.at).toLocaleTimeString()),
        cell(f.route),
        el('th', { scope: 'row' }, f.reason),
        cell(f.code),
        cell(f.status, 'num'),
        cell(f.rpcMethod ? `${f.method} ${f.rpcMethod}` : f.method),
        cell(f.client),
      ),
    ),
    7,
    'None since start',
  );
  fill(
    '#registrations-table tbody',
    s.registrations.map((g) => el('tr', {}, cell(g.tenant), el('th', { scope: 'row' }, g.name), cell(g.route), cell(g.url), cell(g.createdAt))),
    5,
    'None',
  );
  const text = JSON.stringify(s.config, null, 2);
  if ($('#config-text').textContent !== text) $('#config-text').textContent = text;
}

function connect() {
  const es = new EventSource('/ui/events');
  es.addEventListener('state', (e) => render(JSON.parse(e.data)));
  es.onerror = () => {
    $('#status').textContent = 'Connection lost; retrying…';
    // A refused stream (signed out, token changed) is not retried by EventSource: reload to sign in.
    if (es.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), 3000);
  };
}

document.addEventListener('DOMContentLoaded', connect);
