/**
 * The combined verdict of both checks, as the guard gives it with `GUARD_CHECKS =
 * "sufficiency,groundedness"`: each check's verdict from its own thresholds, and the most severe
 * wins, so an answer is blocked when either check blocks it. Pure.
 *
 * What is measured is what blocking does to answers:
 *
 * - an answer is **bad** when a label of it says so: hallucinated (`grounded: false`) or
 *   insufficient context (`sufficient: false`); it is **good** when every label it has says
 *   grounded or sufficient. A check without a label does not count against the answer (on
 *   HaluEval-style data, labeled for groundedness only, bad means hallucinated);
 * - **stopped**: the share of bad answers blocked (by either check);
 * - **lost**: the share of good answers blocked;
 * - **block precision**: the share of bad answers among those blocked, the target
 *   (`--block-precision`) each check's BLOCK_BELOW is recommended for, here for both together.
 *
 * Flags are not counted: a flagged answer still reaches the client.
 */
import type { Check } from '../review/checks'
import type { Recommendation, Targets } from './metrics'

/** What the combined verdict takes of a check's calibration: its recommended thresholds. */
interface Calibrated {
  recommendation: Recommendation
}

/** An answer with a score of both checks and a label of at least one. */
export interface CombinedExample {
  id: string
  scores: Record<Check, number>
  sufficient?: boolean
  grounded?: boolean
  /** See the module's comment: a label says hallucinated or insufficient. */
  bad: boolean
}

export interface LoadedCombined {
  examples: CombinedExample[]
  /** Answers with both scores and no label of either check (left out). */
  unlabeled: number
  estimator: string
}

/** The definition of a bad answer: any label that says hallucinated or insufficient. */
export const isBad = (labels: { sufficient?: boolean; grounded?: boolean }): boolean =>
  labels.sufficient === false || labels.grounded === false

export const BAD_DEFINITION =
  'bad: labeled hallucinated (grounded: false) or insufficient (sufficient: false); good: every label it has says grounded or sufficient (a check without a label does not count)'

/** BLOCK_BELOW of each check: the pair of thresholds that decides what is blocked. */
export type Pair = Record<Check, number>

export interface PairStats {
  /** BLOCK_BELOW (sufficiency) and GROUNDEDNESS_BLOCK_BELOW. */
  pair: Pair
  bad: number
  good: number
  /** Answers blocked by either check. */
  blocked: number
  /** Bad answers blocked. */
  stopped: number
  /** Good answers blocked. */
  lost: number
  /** stopped / bad (NaN without bad answers). */
  stoppedShare: number
  /** lost / good (NaN without good answers). */
  lostShare: number
  /** stopped / blocked: the share of bad answers among those blocked (NaN when none is). */
  precision: number
}

/** What blocking below `pair` does: an answer is blocked when either score is below its threshold. */
export function pairStats(examples: readonly CombinedExample[], pair: Pair): PairStats {
  let bad = 0
  let stopped = 0
  let lost = 0
  for (const example of examples) {
    const blocked =
      example.scores.sufficiency < pair.sufficiency ||
      example.scores.groundedness < pair.groundedness
    if (example.bad) bad++
    if (blocked && example.bad) stopped++
    if (blocked && !example.bad) lost++
  }
  const good = examples.length - bad
  const blocked = stopped + lost
  return {
    pair,
    bad,
    good,
    blocked,
    stopped,
    lost,
    stoppedShare: bad ? stopped / bad : Number.NaN,
    lostShare: good ? lost / good : Number.NaN,
    precision: blocked ? stopped / blocked : Number.NaN,
  }
}

/** The thresholds tabulated for each check: 0 (the check never blocks) and a few from 0.1 up. */
export const GRID = [0, 0.1, 0.2, 0.3, 0.5, 0.7] as const

/** The thresholds the recommendation searches for each check: 0, 0.05, 0.1, …, 0.95. */
export const SEARCH = Array.from({ length: 20 }, (_, index) => Math.round(index * 5) / 100)

/** A check's own recommendation, from its calibration (when its labels allowed one). */
export interface CheckAdvice {
  /** Its recommended BLOCK_BELOW, when that target was met. */
  blockBelow?: number
  /** Its recommended FLAG_BELOW, when that target was met: its BLOCK_BELOW may not exceed it. */
  flagBelow?: number
  /** Why there is no FLAG_BELOW to recommend. */
  noFlag?: string
}

export interface CombinedReport {
  counts: { total: number; bad: number; good: number; unlabeled: number }
  definition: string
  targets: Targets
  /** Rows worth reading: the Worker's defaults, each check's own recommendation, the combined one. */
  rows: Array<{ name: string; stats: PairStats }>
  /** Stopped and lost at every pair of {@link GRID}: `cells[i][j]` at GRID[i] (sufficiency), GRID[j]. */
  grid: { values: number[]; cells: PairStats[][] }
  /**
   * Among the pairs whose blocked answers are at least the block precision bad (with at least
   * `minCount` blocked), the one with the largest share of bad answers stopped minus share of
   * good answers lost; fewer good answers lost breaks ties. (Not simply the most stopped: with two
   * thresholds, that would buy stops with a check that tells nothing apart, for as long as the
   * other keeps the average above the target.) Else the best precision reachable.
   */
  recommendation: { met: true; stats: PairStats } | { met: false; best?: PairStats }
  advice: Record<Check, CheckAdvice>
  /** The `[vars]` lines for both checks, when a pair was recommended. */
  snippet?: string[]
}

/** A check's advice out of its calibration report (undefined: the check had no labels). */
export function adviceOf(report: Calibrated | undefined): CheckAdvice {
  if (!report) return { noFlag: 'no labels of this check' }
  const { flagBelow, blockBelow } = report.recommendation
  return {
    ...(blockBelow.met ? { blockBelow: blockBelow.stats.threshold } : {}),
    ...(flagBelow.met
      ? { flagBelow: flagBelow.stats.threshold }
      : { noFlag: 'its pass precision target is not met' }),
  }
}

/** Bad answers stopped minus good answers lost, as shares (a share of nothing counts 0). */
export const gain = (stats: PairStats) =>
  (Number.isNaN(stats.stoppedShare) ? 0 : stats.stoppedShare) -
  (Number.isNaN(stats.lostShare) ? 0 : stats.lostShare)

/** More gain; then fewer good answers lost; then lower thresholds. */
const better = (a: PairStats, b: PairStats) =>
  gain(a) !== gain(b)
    ? gain(a) > gain(b)
    : a.lost !== b.lost
      ? a.lost < b.lost
      : a.pair.sufficiency + a.pair.groundedness < b.pair.sufficiency + b.pair.groundedness

/** The recommended pair among the candidates (see {@link CombinedReport.recommendation}). */
export function recommendPair(
  examples: readonly CombinedExample[],
  targets: Targets,
  candidates: Record<Check, readonly number[]>,
): CombinedReport['recommendation'] {
  const minCount = targets.minCount ?? 10
  let met: PairStats | undefined
  let best: PairStats | undefined
  for (const sufficiency of candidates.sufficiency) {
    for (const groundedness of candidates.groundedness) {
      const stats = pairStats(examples, { sufficiency, groundedness })
      if (stats.blocked < minCount) continue
      if (stats.precision >= targets.blockPrecision && (!met || better(stats, met))) met = stats
      if (
        !best ||
        stats.precision > best.precision ||
        (stats.precision === best.precision && better(stats, best))
      )
        best = stats
    }
  }
  return met ? { met: true, stats: met } : { met: false, best }
}

const DEFAULT_BLOCK_BELOW = 0.1

/**
 * The combined verdict's figures: the rows worth reading, the grid, the recommended pair and its
 * `[vars]`. `reports` are the checks' own calibrations (a check without labels has none).
 */
export function combine(
  loaded: LoadedCombined,
  targets: Targets,
  reports: Partial<Record<Check, Calibrated>>,
): CombinedReport {
  const { examples } = loaded
  const advice: Record<Check, CheckAdvice> = {
    sufficiency: adviceOf(reports.sufficiency),
    groundedness: adviceOf(reports.groundedness),
  }
  // A check's BLOCK_BELOW stays at or below its recommended FLAG_BELOW (the guard refuses one above).
  const candidates = (check: Check) => {
    const ceiling = advice[check].flagBelow ?? 1
    const values = new Set<number>([...SEARCH, DEFAULT_BLOCK_BELOW])
    if (advice[check].blockBelow !== undefined) values.add(advice[check].blockBelow)
    return [...values].filter((value) => value <= ceiling).sort((a, b) => a - b)
  }
  const recommendation = recommendPair(examples, targets, {
    sufficiency: candidates('sufficiency'),
    groundedness: candidates('groundedness'),
  })
  const rows: CombinedReport['rows'] = [
    {
      name: 'the defaults',
      stats: pairStats(examples, {
        sufficiency: DEFAULT_BLOCK_BELOW,
        groundedness: DEFAULT_BLOCK_BELOW,
      }),
    },
  ]
  const own = advice.sufficiency.blockBelow
  const ownGrounded = advice.groundedness.blockBelow
  if (own !== undefined && ownGrounded !== undefined)
    rows.push({
      name: 'each check’s own',
      stats: pairStats(examples, { sufficiency: own, groundedness: ownGrounded }),
    })
  if (recommendation.met) rows.push({ name: 'recommended', stats: recommendation.stats })
  const bad = examples.filter((example) => example.bad).length
  return {
    counts: {
      total: examples.length,
      bad,
      good: examples.length - bad,
      unlabeled: loaded.unlabeled,
    },
    definition: BAD_DEFINITION,
    targets,
    rows,
    grid: {
      values: [...GRID],
      cells: GRID.map((sufficiency) =>
        GRID.map((groundedness) => pairStats(examples, { sufficiency, groundedness })),
      ),
    },
    recommendation,
    advice,
    ...(recommendation.met ? { snippet: snippet(recommendation.stats.pair, advice) } : {}),
  }
}

/** The settings of a check: BLOCK_BELOW / FLAG_BELOW, GROUNDEDNESS_BLOCK_BELOW / … */
export const settingPrefix = (check: Check) => (check === 'sufficiency' ? '' : 'GROUNDEDNESS_')

function snippet(pair: Pair, advice: Record<Check, CheckAdvice>): string[] {
  const lines = ['[vars]', 'GUARD_CHECKS = "sufficiency,groundedness"']
  for (const check of ['sufficiency', 'groundedness'] as const) {
    const prefix = settingPrefix(check)
    lines.push(`${prefix}BLOCK_BELOW = ${pair[check]}`)
    const flag = advice[check].flagBelow
    lines.push(
      flag !== undefined
        ? `${prefix}FLAG_BELOW = ${flag}`
        : `# ${prefix}FLAG_BELOW: none recommended (${check}: ${advice[check].noFlag}); keep it at or above ${pair[check]}`,
    )
  }
  return lines
}

const percent = (value: number) => (Number.isNaN(value) ? '–' : `${(value * 100).toFixed(1)}%`)

/** The combined section of the text report. */
export function formatCombined(report: CombinedReport): string {
  const { counts } = report
  const out: string[] = []
  out.push(
    `Combined verdict (both checks, the most severe wins): ${counts.total} answers with both scores (${counts.bad} bad, ${counts.good} good)`,
  )
  out.push(`${report.definition}.`)
  out.push(
    'stopped: bad answers blocked by either check; lost: good answers blocked; block precision: bad among the blocked.',
  )
  if (counts.unlabeled) out.push(`left out, no label: ${counts.unlabeled}`)
  out.push('')
  const header = [
    'BLOCK_BELOW',
    'GROUNDEDNESS_BLOCK_BELOW',
    'stopped',
    'lost',
    'block precision',
    '',
  ]
  const rows = report.rows.map(({ name, stats }) => [
    String(stats.pair.sufficiency),
    String(stats.pair.groundedness),
    `${stats.stopped}/${stats.bad} (${percent(stats.stoppedShare)})`,
    `${stats.lost}/${stats.good} (${percent(stats.lostShare)})`,
    percent(stats.precision),
    name,
  ])
  out.push(...table(header, rows))
  out.push('')
  out.push(
    'stopped / lost, BLOCK_BELOW down, GROUNDEDNESS_BLOCK_BELOW across (0: that check never blocks):',
  )
  const { values, cells } = report.grid
  out.push(
    ...table(
      ['', ...values.map(String)],
      cells.map((row, index) => [
        String(values[index]),
        ...row.map((stats) => `${percent(stats.stoppedShare)} / ${percent(stats.lostShare)}`),
      ]),
    ),
  )
  out.push('')
  const minCount = report.targets.minCount ?? 10
  const recommendation = report.recommendation
  if (recommendation.met) {
    const { stats } = recommendation
    out.push(
      `Recommended pair (most stopped minus lost, with at least ${percent(report.targets.blockPrecision)} of the blocked bad, ${minCount}+ blocked): BLOCK_BELOW = ${stats.pair.sufficiency}, GROUNDEDNESS_BLOCK_BELOW = ${stats.pair.groundedness}: stops ${stats.stopped} of ${stats.bad} bad answers (${percent(stats.stoppedShare)}), loses ${stats.lost} of ${stats.good} good (${percent(stats.lostShare)}).`,
    )
    out.push('')
    out.push('Put in wrangler.toml, for both checks:')
    out.push('')
    out.push(...report.snippet!)
  } else {
    const best = recommendation.best
    out.push(
      `No pair blocks ${minCount}+ answers with ${percent(report.targets.blockPrecision)} of them bad.${best ? ` Best reachable: ${percent(best.precision)} at BLOCK_BELOW = ${best.pair.sufficiency}, GROUNDEDNESS_BLOCK_BELOW = ${best.pair.groundedness}, stopping ${best.stopped} of ${best.bad}.` : ''} No snippet printed.`,
    )
  }
  return out.join('\n')
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  )
  return [header, ...rows].map((row) =>
    row
      .map((cell, column) =>
        column === row.length - 1 && header[column] === '' && column > 0
          ? cell
          : cell.padStart(widths[column]!),
      )
      .join('  ')
      .trimEnd(),
  )
}
