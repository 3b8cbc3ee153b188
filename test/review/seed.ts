/**
 * Rollup rows as 30 days of 1,000 requests per second make them, for the overview's tests: in
 * workerd (upserted with the rollups' own statements) and for the browser test (as SQL that
 * `wrangler d1 execute` runs). Deterministic: the same rows every run.
 *
 * Per hour and route there is a row per outcome in each table — the rows do not grow with the
 * rate, only their counts. The traffic follows the day (more in the afternoon, UTC), the judge
 * model changes at `changeAt` (to a faster one, scoring a little lower), and a share of the
 * decisions have no score, by reason.
 */
import { PROMPT_VERSIONS } from '../../src/judge/prompt'
import { LATENCY_COLUMNS, SCORE_COLUMNS } from '../../src/review/rollups'

/** The judge model before the change, and after it (the one wrangler.toml names). */
export const SEED_MODELS = { before: 'gpt-4.1-mini', after: 'gpt-4o-mini' }

const HOUR_MS = 3_600_000

export const SEED_ROUTES = ['/ask', '/v1/chat/completions', '/rag']

/** The outcomes of one hour on one route: the share of its traffic, and the deciding check. */
const OUTCOMES = [
  { share: 0.8, verdict: 'pass', check: 'sufficiency', reason: '' },
  { share: 0.07, verdict: 'flag', check: 'sufficiency', reason: '' },
  { share: 0.035, verdict: 'block', check: 'sufficiency', reason: '' },
  { share: 0.03, verdict: 'flag', check: 'groundedness', reason: '' },
  { share: 0.02, verdict: 'block', check: 'groundedness', reason: '' },
  { share: 0.012, verdict: 'flag', check: 'sufficiency', reason: 'judge-timeout' },
  { share: 0.008, verdict: 'block', check: 'sufficiency', reason: 'unjudgeable' },
  { share: 0.005, verdict: 'flag', check: 'sufficiency', reason: 'judge-error' },
  { share: 0.005, verdict: 'block', check: '', reason: 'no-context' },
] as const

/** Where the scores of each verdict fall: weights over buckets (of 0.05), from `from`. */
const SCORE_SHAPES = {
  pass: { from: 16, weights: [1, 3, 6, 10] },
  flag: { from: 5, weights: [1, 2, 3, 4, 4, 3, 3, 2, 2, 1, 1] },
  block: { from: 0, weights: [5, 3, 2, 1] },
} as const

/** Spreads `n` over buckets by weights; what rounding leaves goes to the heaviest. */
function spread(n: number, from: number, weights: readonly number[], length: number): number[] {
  const counts = new Array<number>(length).fill(0)
  const total = weights.reduce((a, b) => a + b, 0)
  let given = 0
  weights.forEach((weight, index) => {
    const share = Math.floor((n * weight) / total)
    counts[Math.min(length - 1, Math.max(0, from + index))]! += share
    given += share
  })
  const heaviest = weights.indexOf(Math.max(...weights))
  counts[Math.min(length - 1, Math.max(0, from + heaviest))]! += n - given
  return counts
}

export interface SeedRows {
  /** hour, route, mode, verdict, check_name, reason, n */
  decisions: unknown[][]
  /** hour, route, check_name, mode, verdict, reason, estimator, model, prompt_version, block_below, flag_below, n, cache_hits, cache_misses, s00…s19, l00…l13 */
  checks: unknown[][]
}

/**
 * The rows of the hours from `first` (inclusive) to `end` (exclusive), every `everyHours` hours
 * (the counts then stand for that many hours), at `perSecond` requests.
 */
export function seedRows(options: {
  first: number
  end: number
  changeAt: number
  perSecond?: number
  everyHours?: number
  routes?: string[]
}): SeedRows {
  const { first, end, changeAt } = options
  const every = options.everyHours ?? 1
  const routes = options.routes ?? SEED_ROUTES
  const perHour = (options.perSecond ?? 1000) * 3600 * every
  const rows: SeedRows = { decisions: [], checks: [] }
  const checks = new Map<string, unknown[]>()
  for (let hour = first; hour < end; hour += every * HOUR_MS) {
    const changed = hour >= changeAt
    const model = changed ? SEED_MODELS.after : SEED_MODELS.before
    const hourOfDay = new Date(hour).getUTCHours()
    const daily = 1 + 0.4 * Math.sin(((hourOfDay - 8) / 24) * 2 * Math.PI)
    for (const [routeIndex, route] of routes.entries()) {
      const routeShare = [0.5, 0.3, 0.2][routeIndex % 3]!
      for (const outcome of OUTCOMES) {
        // After the change, a little more is flagged and blocked.
        const shift = changed && outcome.verdict !== 'pass' && !outcome.reason ? 1.25 : 1
        const n = Math.round(perHour * daily * routeShare * outcome.share * shift)
        rows.decisions.push([
          hour,
          route,
          'shadow',
          outcome.verdict,
          outcome.check,
          outcome.reason,
          n,
        ])
        for (const check of ['sufficiency', 'groundedness']) {
          if (outcome.check === '') continue
          // The check that decided has the outcome's verdict; the other one passed.
          const own = outcome.check === check
          const verdict = own ? outcome.verdict : 'pass'
          const reason = own ? outcome.reason : ''
          const shape = SCORE_SHAPES[verdict]
          const scores = reason
            ? new Array<number>(SCORE_COLUMNS.length).fill(0)
            : spread(n, shape.from - (changed ? 1 : 0), shape.weights, SCORE_COLUMNS.length)
          const hits = Math.round(n * (0.2 + 0.15 * (changed ? 1 : 0)))
          const latency =
            reason === 'judge-timeout'
              ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
              : changed
                ? [0, 0, 1, 3, 5, 2, 1]
                : [0, 0, 0, 1, 3, 6, 3, 1]
          const latencies = spread(n - hits, 0, latency, LATENCY_COLUMNS.length)
          addCheckRow(checks, [
            hour,
            route,
            check,
            'shadow',
            verdict,
            reason,
            'logprobs',
            model,
            PROMPT_VERSIONS[check as 'sufficiency' | 'groundedness'],
            0.2,
            0.8,
            n,
            hits,
            n - hits,
            ...scores,
            ...latencies,
          ])
        }
      }
    }
  }
  rows.checks = [...checks.values()]
  return rows
}

/** The first 11 values are the key (as the table's unique index); rows with one key add up. */
function addCheckRow(rows: Map<string, unknown[]>, row: unknown[]): void {
  const key = row.slice(0, 11).join('\u0000')
  const known = rows.get(key)
  if (!known) {
    rows.set(key, row)
    return
  }
  for (let index = 11; index < row.length; index++) {
    known[index] = (known[index] as number) + (row[index] as number)
  }
}

const literal = (value: unknown) =>
  typeof value === 'number' ? String(value) : `'${String(value).replace(/'/g, "''")}'`

/** The rows as INSERT statements (for `wrangler d1 execute --file`), 200 rows a statement. */
export function seedSql(rows: SeedRows): string {
  const statements: string[] = []
  for (const [table, values] of [
    ['rollup_decisions', rows.decisions],
    ['rollup_checks', rows.checks],
  ] as const) {
    for (let index = 0; index < values.length; index += 200) {
      const chunk = values.slice(index, index + 200)
      statements.push(
        `INSERT INTO ${table} VALUES ${chunk.map((row) => `(${row.map(literal).join(', ')})`).join(', ')};`,
      )
    }
  }
  return statements.join('\n')
}
