// The dashboard's arithmetic on /v1/stats snapshots, apart from the page so
// that it can be tested without a browser (tests/browser/metrics.test.js).

/**
 * The q-quantile of a histogram given as cumulative counts (one per bound,
 * the last for +Inf), interpolated inside the bucket as the server's
 * Histogram::quantile does: the first bucket starts at 0, a rank in the +Inf
 * bucket gives the highest finite bound. null when there are no observations.
 */
export function quantile(bounds, cumulative, q) {
  const total = cumulative[cumulative.length - 1];
  if (!total) return null;
  const rank = Math.min(1, Math.max(0, q)) * total;
  let below = 0;
  for (let i = 0; i < cumulative.length; i++) {
    const inBucket = cumulative[i] - below;
    if (inBucket > 0 && cumulative[i] >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * ((rank - below) / inBucket);
    }
    below = cumulative[i];
  }
  return null;
}

/**
 * p50, p90 and p99 of the observations made between two snapshots of one
 * histogram ({bounds_ms, cumulative_counts}); `then` null: since the start.
 */
export function windowPercentiles(now, then) {
  if (!now || !now.cumulative_counts) return [null, null, null];
  let base = then && then.cumulative_counts ? then.cumulative_counts : [];
  // Counts that went down belong to an earlier process (a restart): what the
  // new one observed is all there is to count.
  if (base.length !== now.cumulative_counts.length || now.cumulative_counts.some((c, i) => c < base[i])) base = [];
  const delta = now.cumulative_counts.map((c, i) => c - (base[i] || 0));
  return [0.5, 0.9, 0.99].map((q) => quantile(now.bounds_ms, delta, q));
}

/**
 * Whether `now` comes from another server process than `prev` (two /v1/stats
 * snapshots): a restart resets uptime and every counter, another node behind
 * the same address has another name.
 */
export function isRestart(now, prev) {
  if (!prev) return false;
  if (now.node !== prev.node || now.uptime_ms < prev.uptime_ms) return true;
  const m = now.messages, pm = prev.messages;
  return ['published', 'delivered', 'acked', 'dead_letters'].some((k) => m[k] < pm[k]);
}

/** Per-second rate of a counter between two readings; a reset (restart) counts from 0. */
export function ratePerSecond(value, previous, seconds) {
  if (!(seconds > 0)) return null;
  return (value >= previous ? value - previous : value) / seconds;
}
