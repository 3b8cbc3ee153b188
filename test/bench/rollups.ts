/**
 * `npx tsx test/bench/rollups.ts`: what one decision costs the hourly rollups on the request
 * path (`createRollups().add`), in Node, against a D1 stand-in that only counts batches (the
 * write itself is after the response and not measured here). Decisions of two checks across
 * three routes and mixed verdicts, a new hour every 100,000 decisions; prints ns per decision
 * and what the isolate held at most.
 */
import type { DecisionRecord } from '../../src/guard/decision-log'
import { createRollups, MAX_ROLLUP_CELLS } from '../../src/review/rollups'

const batches = { count: 0, rows: 0 }
const db = {
  prepare: () => ({ bind: () => ({}) }),
  batch: async (statements: unknown[]) => {
    batches.count++
    batches.rows += statements.length
    return []
  },
} as unknown as D1Database

const thresholds = {
  sufficiency: { blockBelow: 0.2, flagBelow: 0.8 },
  groundedness: { blockBelow: 0.2, flagBelow: 0.8 },
}
const routes = ['/ask', '/v1/chat/completions', '/rag']
const records: DecisionRecord[] = Array.from({ length: 1000 }, (_, index) => {
  const score = ((index * 7919) % 1000) / 1000
  const verdict = score < 0.2 ? 'block' : score < 0.8 ? 'flag' : 'pass'
  return {
    message: 'rag-guard decision',
    time: new Date(Date.UTC(2026, 11, 1)).toISOString(),
    requestId: String(index),
    route: routes[index % 3]!,
    path: routes[index % 3]!,
    method: 'POST',
    format: 'json',
    mode: 'shadow',
    verdict,
    applied: false,
    score,
    check: 'sufficiency',
    checks: {
      sufficiency: {
        verdict,
        score,
        cache: 'miss',
        judgeLatencyMs: 100 + (index % 900),
        promptVersion: 'sufficiency-v2',
      },
      groundedness: {
        verdict: 'pass',
        score: 0.9,
        cache: 'miss',
        judgeLatencyMs: 150 + (index % 700),
        promptVersion: 'groundedness-v1',
      },
    },
    estimator: 'logprobs',
    model: 'gpt-4o-mini',
    judgeLatencyMs: 300,
    addedLatencyMs: 0,
    status: 200,
    promptVersion: 'sufficiency-v2',
  }
})

const rollups = createRollups({ db, flushMs: 10_000, wait: () => new Promise(() => {}) })
const total = 2_000_000
// Warm up, then measure.
for (let index = 0; index < 200_000; index++) rollups.add(records[index % 1000]!, thresholds)
const start = process.hrtime.bigint()
for (let index = 0; index < total; index++) {
  const record = records[index % 1000]!
  if (index % 100_000 === 0)
    record.time = new Date(Date.UTC(2026, 11, 1) + index * 36_000).toISOString()
  rollups.add(record, thresholds)
}
const elapsed = Number(process.hrtime.bigint() - start)
// For scale: the decision log's own work on the same records (one JSON line each).
const logStart = process.hrtime.bigint()
let length = 0
for (let index = 0; index < total; index++) length += JSON.stringify(records[index % 1000]).length
const logged = Number(process.hrtime.bigint() - logStart)
console.log(
  `${(logged / total).toFixed(0)} ns per decision for JSON.stringify of its record (${length > 0 ? 'the decision log' : ''})`,
)
console.log(
  `${(elapsed / total).toFixed(0)} ns per decision (two checks) over ${total.toLocaleString()} decisions; ` +
    `${batches.count} early flushes at ${MAX_ROLLUP_CELLS} combinations`,
)
