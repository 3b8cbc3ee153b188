-- RAG Guard's hourly rollups of ALL decisions (passes included, whatever STORE_PASS_RATE is), for
-- the overview page (REVIEW_PATH/overview). Each isolate adds up its decisions in memory and
-- writes them here in one statement per table every ROLLUP_FLUSH_SECONDS (src/review/rollups.ts).
-- The page reads only these tables: their size grows with hours x routes x outcomes, never with
-- the number of requests. Rows older than STORE_RETENTION_DAYS are deleted by the scheduled purge.
-- Text columns hold '' for "none", so that the unique keys below match (NULLs never do).

-- Decisions per hour and outcome: the verdicts chart, and unjudged decisions by reason.
CREATE TABLE rollup_decisions (
  -- The start of the hour, in milliseconds since the epoch (as decisions.time).
  hour INTEGER NOT NULL,
  route TEXT NOT NULL,
  -- enforce | shadow (a shadow block is one that would have been applied).
  mode TEXT NOT NULL,
  -- pass | flag | block
  verdict TEXT NOT NULL,
  -- The check that decided; '' when no check was asked (a refused request).
  check_name TEXT NOT NULL,
  -- The reason code when the verdict did not come from a score; '' when it did.
  reason TEXT NOT NULL,
  -- How many decisions.
  n INTEGER NOT NULL
);
CREATE UNIQUE INDEX rollup_decisions_key
  ON rollup_decisions (hour, route, mode, verdict, check_name, reason);
CREATE INDEX rollup_decisions_route ON rollup_decisions (route, hour);

-- Each check's outcomes per hour: score histograms, judge latency, cache hits, and the settings
-- that produced them (judge model, prompt version, estimator, thresholds), whose first hour marks
-- a change on the page's time axis.
CREATE TABLE rollup_checks (
  hour INTEGER NOT NULL,
  route TEXT NOT NULL,
  check_name TEXT NOT NULL,
  mode TEXT NOT NULL,
  -- The check's own verdict and reason ('' when it has a score).
  verdict TEXT NOT NULL,
  reason TEXT NOT NULL,
  -- logprobs | sampling | '' (no judge call was made).
  estimator TEXT NOT NULL,
  model TEXT NOT NULL,
  prompt_version TEXT NOT NULL,
  -- The route's thresholds for this check when the decision was made.
  block_below REAL NOT NULL,
  flag_below REAL NOT NULL,
  n INTEGER NOT NULL,
  -- Verdict-cache lookups that hit and missed.
  cache_hits INTEGER NOT NULL,
  cache_misses INTEGER NOT NULL,
  -- Scores in twenty buckets of 0.05: s00 counts [0, 0.05), ..., s19 counts [0.95, 1].
  s00 INTEGER NOT NULL, s01 INTEGER NOT NULL, s02 INTEGER NOT NULL, s03 INTEGER NOT NULL,
  s04 INTEGER NOT NULL, s05 INTEGER NOT NULL, s06 INTEGER NOT NULL, s07 INTEGER NOT NULL,
  s08 INTEGER NOT NULL, s09 INTEGER NOT NULL, s10 INTEGER NOT NULL, s11 INTEGER NOT NULL,
  s12 INTEGER NOT NULL, s13 INTEGER NOT NULL, s14 INTEGER NOT NULL, s15 INTEGER NOT NULL,
  s16 INTEGER NOT NULL, s17 INTEGER NOT NULL, s18 INTEGER NOT NULL, s19 INTEGER NOT NULL,
  -- Judge calls (cache hits excluded) by latency, upper bounds in ms: 25, 50, 100, 200, 300, 500,
  -- 750, 1000, 1500, 2000, 3000, 5000, 10000, and above (l13).
  l00 INTEGER NOT NULL, l01 INTEGER NOT NULL, l02 INTEGER NOT NULL, l03 INTEGER NOT NULL,
  l04 INTEGER NOT NULL, l05 INTEGER NOT NULL, l06 INTEGER NOT NULL, l07 INTEGER NOT NULL,
  l08 INTEGER NOT NULL, l09 INTEGER NOT NULL, l10 INTEGER NOT NULL, l11 INTEGER NOT NULL,
  l12 INTEGER NOT NULL, l13 INTEGER NOT NULL
);
CREATE UNIQUE INDEX rollup_checks_key ON rollup_checks
  (hour, route, check_name, mode, verdict, reason, estimator, model, prompt_version, block_below, flag_below);
CREATE INDEX rollup_checks_route ON rollup_checks (route, hour);
