// The benchmark's own arithmetic: wrk output parsing and order statistics.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, percentile, summarize } from '../../bench/lib/stats.ts';
import { parseWrk } from '../../bench/lib/wrk.ts';

const WRK = `Running 4s test @ http://127.0.0.1:1234/raw/mcp
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.12ms   20.01ms 394.11ms   98.10%
    Req/Sec     6.12k   700.00     7.00k    80.00%
  Latency Distribution
     50%  710.00us
     75%    7.16ms
     90%   12.00ms
     99%    1.20s
  24480 requests in 4.00s, 3.20MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   6120.50
Transfer/sec:    820.00KB
`;

describe('bench arithmetic', () => {
  it('reads throughput, percentiles in any unit, errors and non-2xx from wrk', () => {
    const r = parseWrk(WRK);
    assert.equal(r.rps, 6120.5);
    assert.equal(r.requests, 24480);
    assert.equal(r.p50_ms, 0.71);
    assert.equal(r.p99_ms, 1200);
    assert.equal(r.errors, 3);
    assert.equal(r.non2xx, 5);
    assert.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused'));
  });

  it('takes nearest-rank percentiles and medians', () => {
    const s = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(s, 50), 50);
    assert.equal(percentile(s, 99), 99);
    assert.equal(percentile([], 50), null);
    assert.deepEqual(summarize([3, 1, 2]), { p50: 2, p99: 3, max: 3, n: 3 });
    assert.equal(median([3, null, 1, 2]), 2);
    assert.equal(median([4, 1]), 2.5);
  });
});
