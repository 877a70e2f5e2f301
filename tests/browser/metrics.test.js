// The dashboard's arithmetic (web/dashboard/metrics.js), without a browser:
// quantiles agree with the server's Histogram::quantile (the cases of
// src/metrics/histogram_test.cpp), windows subtract snapshots, rates survive
// a counter reset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRestart, quantile, windowPercentiles, ratePerSecond } from '../../web/dashboard/metrics.js';

test('quantile interpolates inside the bucket as the server does', () => {
  const bounds = [1, 2, 4];
  const cumulative = [4, 8, 8, 8]; // four in (0, 1], four in (1, 2]
  assert.equal(quantile(bounds, cumulative, 0.5), 1);
  assert.equal(quantile(bounds, cumulative, 0.25), 0.5);
  assert.equal(quantile(bounds, cumulative, 0.75), 1.5);
  assert.equal(quantile(bounds, cumulative, 1), 2);
  assert.equal(quantile(bounds, cumulative, 0), 0);
  assert.equal(quantile(bounds, cumulative, 7), 2);
  assert.equal(quantile(bounds, [0, 0, 2, 2], 0), 2, 'starts at the first non-empty bucket');
  assert.equal(quantile(bounds, [0, 0, 2, 2], 0.5), 3);
  assert.equal(quantile([1, 2], [0, 0, 1], 0.99), 2, 'the +Inf bucket gives the highest finite bound');
  assert.equal(quantile(bounds, [0, 0, 0, 0], 0.5), null);
});

test('window percentiles count only what was observed between two snapshots', () => {
  const then = { bounds_ms: [1, 10, 100], cumulative_counts: [100, 100, 100, 100] };
  const now = { bounds_ms: [1, 10, 100], cumulative_counts: [100, 100, 110, 110] };
  // Since the start the fast ones dominate; in the window all ten were in (10, 100].
  assert.ok(windowPercentiles(now, null)[0] <= 1);
  const [p50, p90, p99] = windowPercentiles(now, then);
  assert.equal(p50, 55);
  assert.equal(p90, 91);
  assert.ok(p99 > 99 && p99 <= 100);
  assert.deepEqual(windowPercentiles(then, then), [null, null, null]);
  assert.deepEqual(windowPercentiles(undefined, then), [null, null, null]);
});

test('a window across a restart counts only what the new process observed', () => {
  const then = { bounds_ms: [1, 10, 100], cumulative_counts: [100, 200, 300, 300] };
  const now = { bounds_ms: [1, 10, 100], cumulative_counts: [0, 10, 10, 10] };
  // Subtracting would give negative counts and invented percentiles.
  assert.deepEqual(windowPercentiles(now, then), windowPercentiles(now, null));
  const [p50, , p99] = windowPercentiles(now, then);
  assert.ok(p50 > 1 && p50 <= 10 && p99 <= 10);
});

test('a restart is told by uptime, node name or any counter going down', () => {
  const snap = (node, uptime, published = 5, acked = 5) => ({
    node, uptime_ms: uptime, messages: { published, delivered: 5, acked, dead_letters: 0 },
  });
  assert.equal(isRestart(snap('a', 2000), null), false);
  assert.equal(isRestart(snap('a', 2000), snap('a', 1000)), false);
  assert.equal(isRestart(snap('a', 500), snap('a', 1000)), true);
  assert.equal(isRestart(snap('b', 2000), snap('a', 1000)), true);
  assert.equal(isRestart(snap('a', 2000, 1), snap('a', 1000)), true);
  assert.equal(isRestart(snap('a', 2000, 5, 1), snap('a', 1000)), true);
});

test('rates are per second and a restarted counter counts from zero', () => {
  assert.equal(ratePerSecond(150, 100, 2), 25);
  assert.equal(ratePerSecond(30, 100, 1), 30);
  assert.equal(ratePerSecond(5, 0, 0), null);
});
