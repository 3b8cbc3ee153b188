/**
 * The overview's reads: the hourly rollups (migrations/0003_rollups.sql) of one window, grouped
 * into the slots of its time axis, and the labels operators gave (for the score histograms split
 * by label). It never scans `decisions`: every statement is a range of a rollup index, and the
 * labels are read from `reviews` with one primary-key look-up of each labeled decision.
 *
 * Shaping the rows into what the charts draw (series per slot, percentiles, the changes of
 * settings) is pure, and kept apart from the SQL.
 */
import { REASON_POLICY, type GuardReason } from '../guard/decision'
import type { Thresholds } from '../guard/policy'
import { CHECKS, isCheck, type Check } from './checks'
import {
  HOUR_MS,
  LATENCY_BUCKETS,
  LATENCY_COLUMNS,
  latencyPercentile,
  SCORE_BUCKETS,
  SCORE_COLUMNS,
} from './rollups'

/** The windows the page offers: how far back, and the width of one slot of the time axis. */
export const WINDOWS = {
  '24h': { slots: 24, step: HOUR_MS },
  '7d': { slots: 28, step: 6 * HOUR_MS },
  '30d': { slots: 30, step: 24 * HOUR_MS },
} as const
export type WindowName = keyof typeof WINDOWS

export interface OverviewRequest {
  window: WindowName
  route?: string
  check?: Check
}

/** The request in a query string; what is not valid is left out (the default window: 7 days). */
export function parseOverviewQuery(query: Record<string, string | undefined>): OverviewRequest {
  const window = (Object.keys(WINDOWS) as WindowName[]).find((name) => name === query.window)
  const request: OverviewRequest = { window: window ?? '7d' }
  if (query.route && query.route.startsWith('/') && query.route.length <= 500) {
    request.route = query.route
  }
  if (isCheck(query.check)) request.check = query.check
  return request
}

/** The time axis: `slots` slots of `step` ms from `start`; the last one holds `now`. */
export interface TimeAxis {
  start: number
  end: number
  step: number
  slots: number
}

export function timeAxis(window: WindowName, now: number): TimeAxis {
  const { slots, step } = WINDOWS[window]
  const end = Math.ceil((now + 1) / step) * step
  return { start: end - slots * step, end, step, slots }
}

/** What the rollup statements read, as rows. */
export interface OverviewRows {
  /** Decisions per slot and outcome (verdicts, and unjudged ones by reason). */
  decisions: Array<{ slot: number; verdict: string; mode: string; reason: string; n: number }>
  /** Check outcomes per slot and combination of settings: scores, latency, cache, changes. */
  checks: CheckRow[]
  /** The combinations of settings of the last hour before the window (what came before). */
  earlier: SettingsRow[]
  labels: Array<{ check_name: string; bucket: number; label: number; n: number }>
  routes: string[]
}

/** One combination of settings a check ran with, and the first hour (of a slot) it was seen. */
export interface SettingsRow {
  route: string
  check_name: string
  model: string
  prompt_version: string
  estimator: string
  block_below: number
  flag_below: number
  first: number
}

export type CheckRow = SettingsRow & Record<string, number> & { slot: number }

const sum = (columns: string[]) => columns.map((column) => `SUM(${column}) AS ${column}`).join(', ')
const SETTINGS = 'route, check_name, model, prompt_version, estimator, block_below, flag_below'

/**
 * The statements of one overview, with their parameters. Each rollup table is read once, as one
 * range of an index (the window's hours, or a route's); the settings before the window are one
 * hour's rows. Exported so that a test can read their query plans.
 */
export function overviewStatements(
  request: OverviewRequest,
  axis: TimeAxis,
): Record<keyof OverviewRows, { sql: string; params: unknown[] }> {
  /** `?1` start, `?2` end, `?3` step, then the filters. */
  const params: unknown[] = [axis.start, axis.end, axis.step]
  const filters: string[] = []
  if (request.route) {
    params.push(request.route)
    filters.push(`route = ?${params.length}`)
  }
  if (request.check) {
    params.push(request.check)
    filters.push(`check_name = ?${params.length}`)
  }
  const where = ['hour >= ?1', 'hour < ?2', ...filters].join(' AND ')
  // Integer slots, whatever type the driver gives the bound numbers.
  const slot = 'CAST((hour - ?1) / ?3 AS INTEGER)'
  // The last hour before the window, for the route and check chosen.
  const earlierParams: unknown[] = [axis.start]
  const earlierFilters: string[] = []
  if (request.route) {
    earlierParams.push(request.route)
    earlierFilters.push(`route = ?${earlierParams.length}`)
  }
  if (request.check) {
    earlierParams.push(request.check)
    earlierFilters.push(`check_name = ?${earlierParams.length}`)
  }
  const alsoEarlier = earlierFilters.map((filter) => ` AND ${filter}`).join('')
  const labelParams: unknown[] = [axis.start, axis.end]
  if (request.route) labelParams.push(request.route)
  // CROSS JOIN keeps `reviews` outside: the labels are read (as many as operators gave), each
  // with one look-up of its decision by primary key — never a range of `decisions`, which
  // SQLite would otherwise pick for a short window.
  const labelSelect = (check: Check, label: string) =>
    `SELECT '${check}' AS check_name,
        MIN(CAST(d.${check}_score * ${SCORE_BUCKETS} AS INTEGER), ${SCORE_BUCKETS - 1}) AS bucket,
        r.${label} AS label, COUNT(*) AS n
      FROM reviews r CROSS JOIN decisions d ON d.id = r.decision_id
      WHERE r.${label} IS NOT NULL AND d.${check}_score IS NOT NULL AND d.time >= ?1 AND d.time < ?2
        ${request.route ? 'AND d.route = ?3' : ''}
      GROUP BY bucket, label`
  const labelChecks = CHECKS.filter((check) => !request.check || request.check === check)
  return {
    decisions: {
      sql: `SELECT ${slot} AS slot, verdict, mode, reason, SUM(n) AS n FROM rollup_decisions
        WHERE ${where} GROUP BY slot, verdict, mode, reason`,
      params,
    },
    checks: {
      sql: `SELECT ${slot} AS slot, ${SETTINGS}, MIN(hour) AS first,
          SUM(cache_hits) AS cache_hits, SUM(cache_misses) AS cache_misses,
          ${sum(SCORE_COLUMNS)}, ${sum(LATENCY_COLUMNS)}
        FROM rollup_checks WHERE ${where} GROUP BY slot, ${SETTINGS}`,
      params,
    },
    earlier: {
      sql: `SELECT ${SETTINGS}, hour AS first FROM rollup_checks
        WHERE hour = (SELECT MAX(hour) FROM rollup_checks WHERE hour < ?1${alsoEarlier})${alsoEarlier}
        GROUP BY ${SETTINGS}`,
      params: earlierParams,
    },
    labels: {
      sql: labelChecks
        .map((check) => labelSelect(check, check === 'sufficiency' ? 'sufficient' : 'grounded'))
        .join(' UNION ALL '),
      params: labelParams,
    },
    // One index seek per route (a skip scan of rollup_decisions_route), not one row per hour.
    routes: {
      sql: `WITH RECURSIVE routes(route, n) AS (
          SELECT MIN(route), 1 FROM rollup_decisions
          UNION ALL
          SELECT (SELECT MIN(route) FROM rollup_decisions WHERE route > routes.route), n + 1
            FROM routes WHERE routes.route IS NOT NULL AND n < 100
        )
        SELECT route FROM routes WHERE route IS NOT NULL`,
      params: [],
    },
  }
}

/** Reads one overview: every statement in one batch (one round trip to D1). */
export async function readOverview(
  db: D1Database,
  request: OverviewRequest,
  axis: TimeAxis,
): Promise<OverviewRows> {
  const statements = overviewStatements(request, axis)
  const names = Object.keys(statements) as Array<keyof OverviewRows>
  const results = await db.batch(
    names.map((name) => db.prepare(statements[name].sql).bind(...statements[name].params)),
  )
  const rows = Object.fromEntries(
    names.map((name, index) => [name, results[index]!.results]),
  ) as unknown as Omit<OverviewRows, 'routes'> & { routes: Array<{ route: string }> }
  return { ...rows, routes: rows.routes.map((row) => row.route) }
}

/** One series of a chart: a value per slot (undefined where there is none). */
export interface Series {
  name: string
  /** A CSS class of the page (its colour), and the key of the list filter it links to. */
  kind: string
  values: Array<number | undefined>
}

/** A change of the settings a check ran with, at the first hour the new ones were seen. */
export interface Change {
  time: number
  routes: string[]
  check: string
  what: string[]
}

export interface Histogram {
  check: Check
  counts: number[]
  /** Labeled decisions per bucket: the positive label (sufficient, grounded) and the negative. */
  labeled?: { yes: number[]; no: number[] }
}

export interface OverviewView {
  axis: TimeAxis
  total: number
  verdicts: Series[]
  reasons: Series[]
  latency: { p50: Series; p95: Series; calls: number[] }
  cacheRate: Series
  cacheLookups: number[]
  histograms: Histogram[]
  changes: Change[]
}

/** The verdict series: a shadow block is its own series, "would have been blocked". */
export const VERDICT_SERIES = [
  { kind: 'pass', name: 'pass' },
  { kind: 'flag', name: 'flag' },
  { kind: 'block', name: 'block' },
  { kind: 'shadow-block', name: 'would have been blocked (shadow)' },
] as const

const zeros = (length: number) => new Array<number>(length).fill(0)

/** What the charts draw, from the rows. */
export function overviewView(rows: OverviewRows, axis: TimeAxis): OverviewView {
  const inAxis = (slot: number) => Number.isInteger(slot) && slot >= 0 && slot < axis.slots

  const verdicts = VERDICT_SERIES.map(({ kind, name }) => ({
    kind,
    name,
    values: zeros(axis.slots),
  }))
  const reasons = new Map<string, number[]>()
  let total = 0
  for (const row of rows.decisions) {
    if (!inAxis(row.slot)) continue
    const kind = row.verdict === 'block' && row.mode === 'shadow' ? 'shadow-block' : row.verdict
    const series = verdicts.find((candidate) => candidate.kind === kind)
    if (!series) continue
    series.values[row.slot]! += row.n
    total += row.n
    // A repaired answer was scored: it counts as the flag it is, not as unjudged.
    if (row.reason === '' || REASON_POLICY[row.reason as GuardReason] === 'onUngrounded') continue
    let values = reasons.get(row.reason)
    if (!values) reasons.set(row.reason, (values = zeros(axis.slots)))
    values[row.slot]! += row.n
  }

  const latencies = Array.from({ length: axis.slots }, () => zeros(LATENCY_BUCKETS))
  const hits = zeros(axis.slots)
  const lookups = zeros(axis.slots)
  const scores = new Map<string, number[]>()
  for (const row of rows.checks) {
    if (!inAxis(row.slot)) continue
    LATENCY_COLUMNS.forEach((column, index) => {
      latencies[row.slot]![index]! += row[column] ?? 0
    })
    hits[row.slot]! += row.cache_hits ?? 0
    lookups[row.slot]! += (row.cache_hits ?? 0) + (row.cache_misses ?? 0)
    let counts = scores.get(row.check_name)
    if (!counts) scores.set(row.check_name, (counts = zeros(SCORE_BUCKETS)))
    SCORE_COLUMNS.forEach((column, index) => {
      counts![index]! += row[column] ?? 0
    })
  }

  const histograms: Histogram[] = []
  for (const check of CHECKS) {
    const counts = scores.get(check)
    const labels = rows.labels.filter((label) => label.check_name === check)
    if (!counts && labels.length === 0) continue
    const histogram: Histogram = { check, counts: counts ?? zeros(SCORE_BUCKETS) }
    if (labels.length > 0) {
      const yes = zeros(SCORE_BUCKETS)
      const no = zeros(SCORE_BUCKETS)
      for (const label of labels) {
        const bucket = Math.min(SCORE_BUCKETS - 1, Math.max(0, label.bucket))
        ;(label.label ? yes : no)[bucket]! += label.n
      }
      histogram.labeled = { yes, no }
    }
    histograms.push(histogram)
  }

  return {
    axis,
    total,
    verdicts,
    reasons: [...reasons.entries()]
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([reason, values]) => ({ kind: 'reason', name: reason, values })),
    latency: {
      p50: { kind: 'p50', name: 'p50', values: latencies.map((c) => latencyPercentile(c, 0.5)) },
      p95: { kind: 'p95', name: 'p95', values: latencies.map((c) => latencyPercentile(c, 0.95)) },
      calls: latencies.map((counts) => counts.reduce((a, b) => a + b, 0)),
    },
    cacheRate: {
      kind: 'cache',
      name: 'cache hit rate',
      values: hits.map((hit, slot) => (lookups[slot]! > 0 ? hit / lookups[slot]! : undefined)),
    },
    cacheLookups: lookups,
    histograms,
    changes: settingsChanges(
      rows.earlier,
      rows.checks.filter((row) => inAxis(row.slot)),
    ),
  }
}

const SETTING_NAMES: Array<[keyof SettingsRow, string]> = [
  ['model', 'judge model'],
  ['prompt_version', 'prompt version'],
  ['estimator', 'estimator'],
  ['block_below', 'block below'],
  ['flag_below', 'flag below'],
]

const shown = (value: unknown) => (value === '' ? '(none)' : String(value))
const settingsKey = (row: SettingsRow) =>
  SETTING_NAMES.map(([field]) => String(row[field])).join('\u0000')

/**
 * The changes of settings within the window. Per route and check, slot by slot: a combination of
 * settings that the slot before did not have (or, for the first slot, the last hour before the
 * window) is a change, at the first hour it was seen, described against the one it replaced. A
 * change back (a rollback) is a change too. The same change on several routes at the same hour
 * (a new judge model for all) is one change.
 */
export function settingsChanges(
  earlier: readonly SettingsRow[],
  rows: ReadonlyArray<SettingsRow & { slot: number }>,
): Change[] {
  const groups = new Map<string, Array<SettingsRow & { slot: number }>>()
  const before = new Map<string, SettingsRow[]>()
  const group = (row: SettingsRow) => `${row.route}\u0000${row.check_name}`
  for (const row of earlier) before.set(group(row), [...(before.get(group(row)) ?? []), row])
  for (const row of rows) groups.set(group(row), [...(groups.get(group(row)) ?? []), row])
  const changes = new Map<string, Change>()
  for (const [name, members] of groups) {
    let previous = before.get(name) ?? []
    const slots = [...new Set(members.map((row) => row.slot))].sort((a, b) => a - b)
    for (const slot of slots) {
      const current = members.filter((row) => row.slot === slot).sort((a, b) => a.first - b.first)
      const known = new Set(previous.map(settingsKey))
      const replaced = previous[previous.length - 1]
      for (const row of current) {
        if (!replaced || known.has(settingsKey(row))) continue
        const what = SETTING_NAMES.filter(([field]) => replaced[field] !== row[field]).map(
          ([field, label]) => `${label} ${shown(replaced[field])} → ${shown(row[field])}`,
        )
        const key = `${row.first}\u0000${row.check_name}\u0000${what.join('; ')}`
        const change = changes.get(key)
        if (change) change.routes.push(row.route)
        else changes.set(key, { time: row.first, routes: [row.route], check: row.check_name, what })
      }
      previous = current
    }
  }
  return [...changes.values()].sort((a, b) => a.time - b.time)
}

/** The thresholds drawn on a check's histogram: those of the route, or each distinct one. */
export function currentThresholds(
  routes: ReadonlyArray<{ paths: readonly string[]; thresholds: Record<Check, Thresholds> }>,
  check: Check,
  route: string | undefined,
): Thresholds[] {
  const chosen = route ? routes.filter((candidate) => candidate.paths.includes(route)) : routes
  const seen = new Map<string, Thresholds>()
  for (const candidate of chosen) {
    const thresholds = candidate.thresholds[check]
    seen.set(`${thresholds.blockBelow}/${thresholds.flagBelow}`, thresholds)
  }
  return [...seen.values()]
}
