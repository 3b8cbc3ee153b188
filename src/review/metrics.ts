/**
 * Every decision as one Workers Analytics Engine data point, when a dataset is bound as
 * `GUARD_METRICS`: for traffic past what D1's rollups should take, or to chart the guard in the
 * operator's own dashboard (Grafana, any SQL client) through the SQL API. docs/operate.md, "Analytics
 * Engine", has the queries that draw the overview's charts.
 *
 * The layout is a contract (queries name `blob3`, `double1`): add at the end, never reorder.
 * `writeDataPoint` does not wait for I/O, so this costs the request path almost nothing.
 */
import type { DecisionRecord } from '../guard/decision-log'
import { checkOutcomes, type RouteThresholds } from './rollups'

/**
 * The blobs of a data point, in order (`blob1` …). Texts are the decision record's fields; ''
 * where the record has none.
 */
export const METRIC_BLOBS = [
  'route',
  'verdict',
  'mode',
  'check',
  'reason',
  'estimator',
  'model',
  'promptVersion',
  'cache',
  'sufficiencyVerdict',
  'groundednessVerdict',
] as const

/** The doubles, in order (`double1` …); -1 where there is no value (no score, no judge call). */
export const METRIC_DOUBLES = [
  'score',
  'sufficiencyScore',
  'groundednessScore',
  'judgeLatencyMs',
  'addedLatencyMs',
  'status',
  'blockBelow',
  'flagBelow',
  'cacheHit',
] as const

/** Analytics Engine's limits: an index of at most 96 bytes, blobs of 16 KB together. */
const MAX_INDEX_BYTES = 96
const MAX_BLOB_CHARS = 200

const clip = (value: unknown, max = MAX_BLOB_CHARS) =>
  typeof value === 'string' ? value.slice(0, max) : ''

/** The index (Analytics Engine's sampling key): the route, cut to 96 bytes. */
function indexOf(route: string): string {
  const bytes = new TextEncoder().encode(route)
  if (bytes.length <= MAX_INDEX_BYTES) return route
  return new TextDecoder().decode(bytes.slice(0, MAX_INDEX_BYTES)).replace(/\uFFFD+$/, '')
}

/** The data point of one decision. */
export function metricPoint(
  record: DecisionRecord,
  thresholds: RouteThresholds,
): AnalyticsEngineDataPoint {
  const outcomes = checkOutcomes(record)
  const of = (check: 'sufficiency' | 'groundedness') =>
    outcomes.find((outcome) => outcome.check === check)
  const sufficiency = of('sufficiency')
  const groundedness = of('groundedness')
  const deciding = record.check === 'groundedness' ? groundedness : sufficiency
  const limits =
    record.check === 'groundedness' || record.check === 'sufficiency'
      ? thresholds[record.check]
      : undefined
  const number = (value: number | undefined) =>
    typeof value === 'number' && Number.isFinite(value) ? value : -1
  const cache = deciding?.cache ?? record.cache
  return {
    indexes: [indexOf(record.route)],
    blobs: [
      clip(record.route),
      record.verdict,
      record.mode,
      clip(record.check),
      clip(record.reason),
      clip(record.estimator),
      clip(record.model),
      clip(record.promptVersion),
      clip(cache),
      clip(sufficiency?.verdict),
      clip(groundedness?.verdict),
    ],
    doubles: [
      number(record.score),
      number(sufficiency?.score),
      number(groundedness?.score),
      cache === 'hit' ? -1 : number(record.judgeLatencyMs),
      number(record.addedLatencyMs),
      record.status,
      number(limits?.blockBelow),
      number(limits?.flagBelow),
      cache === 'hit' ? 1 : 0,
    ],
  }
}
