// The dashboard's arithmetic (web/dashboard/metrics.js), without a browser:
// quantiles agree with the server's Histogram::quantile (the cases of
// src/metrics/histogram_test.cpp), windows subtract snapshots, rates survive
// a counter reset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantile, windowPercentiles, ratePerSecond } from '../../web/dashboard/metrics.js';

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

test('rates are per second and a restarted counter counts from zero', () => {
  assert.equal(ratePerSecond(150, 100, 2), 25);
  assert.equal(ratePerSecond(30, 100, 1), 30);
  assert.equal(ratePerSecond(5, 0, 0), null);
});
