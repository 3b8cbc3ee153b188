import { smoothedShare } from '../judge/estimators/sampling'
import { CHECKS, checkScore, LABEL_WORDS, recordCheck, type Check } from '../review/checks'
import { isBad, type CombinedExample, type LoadedCombined } from './combined'
import { DataError } from './data'
import {
  auroc,
  averagePrecision,
  brierScore,
  expectedCalibrationError,
  recommendThresholds,
  statsAt,
  type Recommendation,
  type Scored,
  type Targets,
  type ThresholdStats,
} from './metrics'
import {
  formatProductionLabels,
  lineLabel,
  noLabels,
  tooFewLabels,
  type ProductionLabels,
} from './production'

export interface ScoredExample extends Scored {
  id: string
}

export interface LoadedScores {
  examples: ScoredExample[]
  /** Lines that had no score, by reason (left out of every metric). */
  withoutScore: Record<string, number>
  /** Scored lines with no label (decision logs not found in the labels file). */
  unlabeled: number
  models: string[]
  promptVersions: string[]
  source: 'eval' | 'decision-log'
  /** The estimator of every score here: scores of two estimators are never calibrated together. */
  estimator: Estimator
  /** Scored lines of another estimator, left out (with `--estimator`), by estimator. */
  otherEstimators: Record<string, number>
  /** Sampling: the numbers of samples the scores were read from (one, unless N was changed). */
  sampleCounts: number[]
  /** The check calibrated: its scores and its labels were read. */
  check: Check
  /** Decision logs: per check, the decisions that have both a score and a label of it. */
  production?: ProductionLabels
}

interface Line {
  id?: unknown
  requestId?: unknown
  questionHash?: unknown
  contextHash?: unknown
  message?: unknown
  score?: unknown
  sufficient?: unknown
  label?: unknown
  reason?: unknown
  model?: unknown
  promptVersion?: unknown
  estimator?: unknown
  samples?: unknown
  logs?: unknown
  check?: unknown
  checks?: unknown
  [field: string]: unknown
}

export type Estimator = 'logprobs' | 'sampling'
export const ESTIMATORS: readonly Estimator[] = ['logprobs', 'sampling']

/**
 * The estimator a scored line came from. Lines written before estimators existed carry none:
 * their scores are logprobs. A score that came with a reason (`no-documents`) is no judge's:
 * it belongs to none (undefined), and goes with whichever is calibrated.
 */
function estimatorOf(line: Line): string | undefined {
  if (typeof line.estimator === 'string') return line.estimator
  return typeof line.reason === 'string' ? undefined : 'logprobs'
}

/** Decision records inside `wrangler tail --format json` output ({ logs: [{ message: ['…'] }] }). */
function nestedDecisions(line: Line): Line[] {
  if (!Array.isArray(line.logs)) return []
  return line.logs.flatMap((log: { message?: unknown }) =>
    (Array.isArray(log?.message) ? log.message : []).flatMap((message: unknown) => {
      if (typeof message === 'object' && message !== null) return [message as Line]
      if (typeof message !== 'string') return []
      try {
        return [JSON.parse(message) as Line]
      } catch {
        return []
      }
    }),
  )
}

const hasLabel = (line: Line) =>
  lineLabel(line, 'sufficiency') !== undefined || lineLabel(line, 'groundedness') !== undefined

/** A check's reason for having no score in a line: its own, else the decision's. */
function reasonOf(line: Line, check: Check): unknown {
  const own = (line.checks as Record<string, { reason?: unknown }> | undefined)?.[check]
  return own?.reason ?? line.reason
}

/** Score lines as read: eval output, or decision records with the labels joined to them. */
export interface ScoreLines {
  source: string
  /** Eval output: one line per example and check. Decision log: one record per request. */
  isLog: boolean
  /** Every line read, in order, under its key: eval, its id and check; a decision log, its id. */
  entries: Array<[string, Line]>
  /** A line's label of a check: its own, else (a decision log) the labels file's. */
  labelFor: (line: Line, check: Check) => boolean | undefined
}

/**
 * Refuses a score that is not one: a number outside [0, 1] or anything but a number (or null,
 * "no score"), by line number and field. Clamping a 7 to 1 would calibrate on a typo.
 */
function scoreProblems(line: Line, where: string): string[] {
  const fields: Array<[string, unknown]> = [['score', line.score]]
  if (typeof line.checks === 'object' && line.checks !== null && !Array.isArray(line.checks))
    for (const [check, own] of Object.entries(line.checks as Record<string, unknown>))
      if (typeof own === 'object' && own !== null)
        fields.push([`checks.${check}.score`, (own as { score?: unknown }).score])
  return fields.flatMap(([field, value]) => {
    if (value === undefined || value === null) return []
    if (typeof value !== 'number' || !Number.isFinite(value))
      return [
        `${where}: "${field}" is ${JSON.stringify(value)}; a score is a number in [0, 1], or null`,
      ]
    return value < 0 || value > 1 ? [`${where}: "${field}" is ${value}; scores lie in [0, 1]`] : []
  })
}

/**
 * Reads `rag-guard eval` output, or the Worker's decision log joined with a labels file (by
 * `requestId`, else by `questionHash` and `contextHash`), or a decision log that carries its own
 * labels (the review page's export). For an id seen twice (eval: an id and check), the last line
 * wins (a resumed eval appends the new try). A score that is no score in [0, 1] is refused.
 */
export function readScoreLines(text: string, source: string, labelsText?: string): ScoreLines {
  const lines: Line[] = []
  /** The line number of each record read (records inside a `wrangler tail` line share it). */
  const lineNumbers = new Map<Line, number>()
  text.split(/\r?\n/).forEach((raw, index) => {
    if (!raw.trim()) return
    let line: Line
    try {
      line = JSON.parse(raw) as Line
    } catch {
      throw new DataError(`${source}:${index + 1}: not JSON`)
    }
    const nested = nestedDecisions(line)
    for (const record of nested.length ? nested : [line]) {
      lines.push(record)
      lineNumbers.set(record, index + 1)
    }
  })
  const decisions = lines.filter((line) => line.message === 'rag-guard decision')
  const isLog = decisions.length > 0
  const records = isLog ? decisions : lines
  const problems = records.flatMap((line) =>
    typeof line === 'object' && line !== null
      ? scoreProblems(line, `${source}:${lineNumbers.get(line)}`)
      : [],
  )
  if (problems.length)
    throw new DataError(
      `${problems.length} bad score${problems.length === 1 ? '' : 's'} in ${source}:\n  ${problems.slice(0, 20).join('\n  ')}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ''}`,
    )
  let labelFor = (line: Line, wanted: Check) => lineLabel(line, wanted)
  if (isLog && labelsText === undefined && !decisions.some(hasLabel)) {
    throw new DataError(
      `${source} is a decision log: give the labels with --labels <file> (lines with requestId or questionHash/contextHash, and sufficient, grounded or label)`,
    )
  }
  if (isLog && labelsText !== undefined) {
    const byRequest = new Map<string, Line>()
    const byHashes = new Map<string, Line>()
    labelsText.split(/\r?\n/).forEach((raw, index) => {
      if (!raw.trim()) return
      let label: Line
      try {
        label = JSON.parse(raw) as Line
      } catch {
        throw new DataError(`labels:${index + 1}: not JSON`)
      }
      if (!hasLabel(label))
        throw new DataError(`labels:${index + 1}: no usable "sufficient", "grounded" or "label"`)
      if (typeof label.requestId === 'string') byRequest.set(label.requestId, label)
      if (typeof label.questionHash === 'string')
        byHashes.set(`${label.questionHash}/${label.contextHash ?? ''}`, label)
    })
    // A line's own label first, then the labels file's: by request id, then by hashes.
    labelFor = (line, wanted) =>
      [
        line,
        typeof line.requestId === 'string' ? byRequest.get(line.requestId) : undefined,
        byHashes.get(`${line.questionHash}/${line.contextHash ?? ''}`),
        byHashes.get(`${line.questionHash}/`),
      ]
        .map((candidate) => candidate && lineLabel(candidate, wanted))
        .find((value) => value !== undefined)
  }

  // Eval output has a line per example and check; a decision record holds every check.
  const entries = records.map((line, index): [string, Line] => {
    const id = idOf(line, index)
    return [isLog ? id : `${id}\u0000${recordCheck(line)}`, line]
  })
  return { source, isLog, entries, labelFor }
}

const idOf = (line: Line, index: number) => String(line.id ?? line.requestId ?? `line-${index + 1}`)

/** The lines of `check`'s outcome, every one read: eval lines of that check, every decision record. */
function entriesOf(read: ScoreLines, check: Check): Array<[string, Line]> {
  return read.entries.flatMap(([key, line]) =>
    read.isLog
      ? [[key, line]]
      : recordCheck(line) === check
        ? [[key.split('\u0000')[0]!, line]]
        : [],
  ) as Array<[string, Line]>
}

/**
 * The last line of each example for `check` (in the order of the last occurrences), among the
 * lines of `estimator` and those that belong to none: a file that holds two estimators' scores
 * for one id keeps each one's own.
 */
function linesOf(read: ScoreLines, check: Check, estimator?: Estimator): Array<[string, Line]> {
  const latest = new Map<string, Line>()
  for (const [id, line] of entriesOf(read, check)) {
    const name = estimatorOf(line)
    if (estimator && name !== undefined && name !== estimator) continue
    latest.delete(id) // re-insert, so the order follows the last occurrence
    latest.set(id, line)
  }
  return [...latest]
}

/**
 * The estimator to calibrate among the scored lines: the one asked for, else the only one there.
 * Refuses lines of two estimators without `--estimator` — counted over every line, not only the
 * last of each id: two files of the same ids put end to end are mixed, not a resumed run.
 */
function chooseEstimator(
  read: ScoreLines,
  check: Check,
  estimator?: Estimator,
): { chosen: Estimator; scored: Map<string, number>; counted: () => string } {
  // One estimator at a time: a logprobs score of 0.6 and a sampling score of 0.58 (3 of 5) are
  // not on one scale, and thresholds fitted to both fit neither.
  const ids = new Map<string, Set<string>>()
  for (const [id, line] of entriesOf(read, check)) {
    const name = estimatorOf(line)
    if (typeof line.score === 'number' && name) ids.set(name, (ids.get(name) ?? new Set()).add(id))
  }
  const scored = new Map([...ids].map(([name, scoredIds]) => [name, scoredIds.size]))
  const counted = () => [...scored].map(([name, count]) => `${name} ${count}`).join(', ')
  if (!estimator && scored.size > 1) {
    throw new DataError(
      `${read.source} mixes scores of two estimators (${counted()}), which are not on one scale: calibrate one at a time with --estimator ${[...scored.keys()].join(' or --estimator ')}`,
    )
  }
  const chosen = estimator ?? (scored.keys().next().value as Estimator | undefined) ?? 'logprobs'
  return { chosen, scored, counted }
}

/** One check's labeled scores out of the lines read; `examples` is empty when there are none. */
export function loadCheck(read: ScoreLines, check: Check, estimator?: Estimator): LoadedScores {
  const { chosen, scored } = chooseEstimator(read, check, estimator)
  const lines = linesOf(read, check, chosen)
  const examples: ScoredExample[] = []
  const withoutScore: Record<string, number> = {}
  // The examples with scores of another estimator only, or as well: left out, and said so.
  const otherEstimators: Record<string, number> = Object.fromEntries(
    [...scored].filter(([name]) => name !== chosen),
  )
  const sampleCounts = new Set<number>()
  let unlabeled = 0
  const models = new Set<string>()
  const promptVersions = new Set<string>()
  const production = read.isLog ? noLabels() : undefined
  for (const [id, line] of lines) {
    if (typeof line.model === 'string') models.add(line.model)
    if (typeof line.promptVersion === 'string') promptVersions.add(line.promptVersion)
    if (production) {
      for (const counted of Object.keys(production) as Check[]) {
        const label = read.labelFor(line, counted)
        if (label === undefined || checkScore(line, counted) === undefined) continue
        production[counted].labeled++
        production[counted][label ? 'yes' : 'no']++
      }
    }
    const score = checkScore(line, check)
    if (score === undefined) {
      const reason = reasonOf(line, check)
      const key = typeof reason === 'string' ? reason : 'no-score'
      withoutScore[key] = (withoutScore[key] ?? 0) + 1
      continue
    }
    const sufficient = read.labelFor(line, check)
    if (sufficient === undefined) {
      unlabeled++
      continue
    }
    if (typeof line.samples === 'number') sampleCounts.add(line.samples)
    examples.push({ id, score: Math.min(1, Math.max(0, score)), sufficient })
  }
  return {
    examples,
    withoutScore,
    unlabeled,
    models: [...models],
    promptVersions: [...promptVersions],
    source: read.isLog ? 'decision-log' : 'eval',
    estimator: chosen,
    otherEstimators,
    sampleCounts: [...sampleCounts].sort((a, b) => a - b),
    check,
    ...(production ? { production } : {}),
  }
}

function noneLabeled(read: ScoreLines, check: Check, estimator?: Estimator): DataError {
  const { scored, counted } = chooseEstimator(read, check, estimator)
  return new DataError(
    `${read.source}: no labeled example with a ${check} score${estimator ? ` from the ${estimator} estimator${scored.size ? ` (it holds ${counted()})` : ''}` : ''}`,
  )
}

/**
 * One check's labeled scores (see {@link readScoreLines} for what is read): `check` picks the
 * scores and labels read: sufficiency (`sufficient` or `label`) or groundedness (`grounded`).
 * Throws when there is no labeled example with a score of it.
 */
export function loadScores(
  text: string,
  source: string,
  labelsText?: string,
  estimator?: Estimator,
  check: Check = 'sufficiency',
): LoadedScores {
  const read = readScoreLines(text, source, labelsText)
  const loaded = loadCheck(read, check, estimator)
  if (loaded.examples.length === 0) throw noneLabeled(read, check, estimator)
  return loaded
}

/** Every check's labeled scores, and the answers that both checks scored. */
export interface LoadedChecks {
  /** The checks with labeled scores, in the order of `CHECKS`. */
  checks: LoadedScores[]
  /** Checks asked for (by default: all) with scores but no labeled one, left out. */
  leftOut: Check[]
  /** The answers with a score of both checks and a label of either (absent with `--check`). */
  combined?: LoadedCombined
}

/**
 * Reads the lines once and loads `checks` (default: every check with labeled scores; at least
 * one). With more than one check asked for, also the answers both checks scored, for the
 * combined verdict.
 */
export function loadChecks(
  text: string,
  source: string,
  labelsText?: string,
  estimator?: Estimator,
  checks?: readonly Check[],
): LoadedChecks {
  const read = readScoreLines(text, source, labelsText)
  const asked = checks ?? CHECKS
  const loaded = asked.map((check) => loadCheck(read, check, estimator))
  const present = loaded.filter((one) => one.examples.length > 0)
  if (present.length === 0) throw noneLabeled(read, asked[0]!, estimator)
  const combined =
    asked.length > 1 ? loadCombined(read, estimator ?? present[0]!.estimator) : undefined
  return {
    checks: present,
    leftOut: loaded
      .filter((one) => one.examples.length === 0 && one.unlabeled > 0)
      .map((one) => one.check),
    ...(combined && combined.examples.length > 0 ? { combined } : {}),
  }
}

/**
 * The answers with a score of both checks (of `estimator`) and a label of at least one: eval
 * lines joined by id, or decision records that hold both. See `combined.ts` for "bad".
 */
export function loadCombined(read: ScoreLines, estimator: Estimator): LoadedCombined {
  const byId = new Map<string, Partial<Record<Check, Line>>>()
  for (const check of CHECKS) {
    for (const [id, line] of linesOf(read, check, estimator)) {
      byId.set(id, { ...byId.get(id), [check]: line })
    }
  }
  const examples: CombinedExample[] = []
  let unlabeled = 0
  for (const [id, lines] of byId) {
    const sufficiency = lines.sufficiency && checkScore(lines.sufficiency, 'sufficiency')
    const groundedness = lines.groundedness && checkScore(lines.groundedness, 'groundedness')
    if (sufficiency === undefined || groundedness === undefined) continue
    const label = (check: Check) =>
      [lines.sufficiency, lines.groundedness]
        .map((line) => line && read.labelFor(line, check))
        .find((value) => value !== undefined)
    const sufficient = label('sufficiency')
    const grounded = label('groundedness')
    if (sufficient === undefined && grounded === undefined) {
      unlabeled++
      continue
    }
    examples.push({
      id,
      scores: {
        sufficiency: Math.min(1, Math.max(0, sufficiency)),
        groundedness: Math.min(1, Math.max(0, groundedness)),
      },
      ...(sufficient === undefined ? {} : { sufficient }),
      ...(grounded === undefined ? {} : { grounded }),
      bad: isBad({ sufficient, grounded }),
    })
  }
  return { examples, unlabeled, estimator }
}

/**
 * What a reader of sampling scores must know: from n samples a score takes n + 1 values, and a
 * threshold anywhere between two of them acts the same.
 */
export function granularity(loaded: LoadedScores): string | undefined {
  if (loaded.estimator !== 'sampling') return undefined
  const counts = loaded.sampleCounts
  if (counts.length !== 1)
    return counts.length > 1
      ? `scores come from different numbers of samples (${counts.join(', ')}): their values differ, calibrate one number at a time if you can`
      : undefined
  const n = counts[0]!
  const values = Array.from({ length: n + 1 }, (_, k) => smoothedShare(k, n - k))
  return `scores from ${n} samples take ${n + 1} values (${values.map((value) => value.toFixed(3)).join(', ')}): a threshold anywhere between two of them acts the same`
}

export interface CalibrationReport {
  loaded: LoadedScores
  counts: { total: number; sufficient: number; insufficient: number }
  auroc: number
  auprc: number
  brier: number
  ece: number
  eceBins: number
  targets: Targets
  recommendation: Recommendation
  /** BLOCK_BELOW and FLAG_BELOW to put in the config, when both targets were met. */
  thresholds?: { blockBelow: number; flagBelow: number }
  at: ThresholdStats[]
  standIn: boolean
  /** Production labels of the calibrated check that are too few for the targets. */
  tooFew: string[]
}

export function calibrate(
  loaded: LoadedScores,
  targets: Targets,
  at: number[] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
  eceBins = 10,
): CalibrationReport {
  const examples = loaded.examples
  const sufficient = examples.filter((example) => example.sufficient).length
  const recommendation = recommendThresholds(examples, targets)
  const flag = recommendation.flagBelow.met ? recommendation.flagBelow.stats.threshold : undefined
  const block = recommendation.blockBelow.met
    ? recommendation.blockBelow.stats.threshold
    : undefined
  return {
    loaded,
    counts: { total: examples.length, sufficient, insufficient: examples.length - sufficient },
    auroc: auroc(examples),
    auprc: averagePrecision(examples),
    brier: brierScore(examples),
    ece: expectedCalibrationError(examples, eceBins),
    eceBins,
    targets,
    recommendation,
    ...(flag !== undefined && block !== undefined
      ? { thresholds: { blockBelow: block, flagBelow: flag } }
      : {}),
    at: at.map((threshold) => statsAt(examples, threshold)),
    standIn: loaded.models.some((model) => model.startsWith('stand-in')),
    tooFew: loaded.production
      ? tooFewLabels(loaded.production[loaded.check], loaded.check, targets)
      : [],
  }
}

/**
 * A report as `calibrate --json` prints it: the examples left out (they are the input), and the
 * counts in the check's own words — `grounded` / `hallucinated` for groundedness.
 */
export function calibrationJson(report: CalibrationReport) {
  const { yes, no } = LABEL_WORDS[report.loaded.check]
  const { total, sufficient, insufficient } = report.counts
  return {
    ...report,
    counts: { total, [yes]: sufficient, [no]: insufficient },
    loaded: { ...report.loaded, examples: undefined },
  }
}

const percent = (value: number) => (Number.isNaN(value) ? '–' : `${(value * 100).toFixed(1)}%`)
const fixed = (value: number) => (Number.isNaN(value) ? '–' : value.toFixed(3))

/** The report as text, for the terminal. */
export function formatCalibration(report: CalibrationReport): string {
  const { loaded, counts, targets, recommendation } = report
  // The check's own words: sufficient / insufficient, grounded / hallucinated.
  const { yes, no } = LABEL_WORDS[loaded.check]
  const out: string[] = []
  out.push(
    `RAG Guard calibration${loaded.check === 'sufficiency' ? '' : ` of ${loaded.check}`}: ${counts.total} labeled examples (${counts.sufficient} ${yes}, ${counts.insufficient} ${no}) from ${loaded.source === 'eval' ? 'rag-guard eval' : 'the decision log'}`,
  )
  out.push(
    `judge: ${loaded.models.join(', ') || 'unknown'} · prompt: ${loaded.promptVersions.join(', ') || 'unknown'} · estimator: ${loaded.estimator}`,
  )
  if (loaded.production) {
    out.push(`production labels: ${formatProductionLabels(loaded.production)}`)
    for (const warning of report.tooFew) out.push(`WARNING: ${warning}`)
  }
  const steps = granularity(loaded)
  if (steps) out.push(`NOTE: ${steps}.`)
  const others = Object.entries(loaded.otherEstimators)
  if (others.length)
    out.push(
      `left out, another estimator: ${others.map(([name, count]) => `${name} ${count}`).join(', ')}`,
    )
  if (report.standIn)
    out.push(
      "NOTE: these scores come from the stand-in model, not a language model: they show the workflow, not a judge's quality.",
    )
  const missing = Object.entries(loaded.withoutScore)
  if (missing.length)
    out.push(
      `left out, no score: ${missing.map(([reason, count]) => `${reason} ${count}`).join(', ')}`,
    )
  if (loaded.unlabeled) out.push(`left out, no label: ${loaded.unlabeled}`)
  out.push('')
  out.push(
    `AUROC ${fixed(report.auroc)}   AUPRC (${no}) ${fixed(report.auprc)}   Brier ${fixed(report.brier)}   ECE (${report.eceBins} equal bins) ${fixed(report.ece)}`,
  )
  out.push('')
  const header = [
    'threshold',
    'passed (≥)',
    'pass precision',
    `${yes} recall`,
    'blocked (<)',
    'block precision',
    `${no} recall`,
  ]
  const rows = report.at.map((stats) => [
    String(stats.threshold),
    `${stats.above} (${percent(stats.coverage)})`,
    percent(stats.abovePrecision),
    percent(stats.sufficientRecall),
    String(stats.below),
    percent(stats.belowPrecision),
    percent(stats.insufficientRecall),
  ])
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  )
  for (const row of [header, ...rows])
    out.push(row.map((cell, column) => cell.padStart(widths[column]!)).join('  '))
  out.push('')
  out.push(
    `Targets: of the answers passed, at least ${percent(targets.passPrecision)} ${loaded.check === 'sufficiency' ? 'have sufficient context' : `are ${yes}`}; of those blocked, at least ${percent(targets.blockPrecision)} ${loaded.check === 'sufficiency' ? 'truly lack it' : `are ${no}`} (each side with ${targets.minCount ?? 10}+ examples).`,
  )
  // The settings of the calibrated check: BLOCK_BELOW / FLAG_BELOW, or GROUNDEDNESS_…
  const prefix = loaded.check === 'sufficiency' ? '' : `${loaded.check.toUpperCase()}_`
  const flag = recommendation.flagBelow
  if (flag.met) {
    out.push(
      `  ${prefix}FLAG_BELOW = ${flag.stats.threshold}: passes ${flag.stats.above} (${percent(flag.stats.coverage)} of answers), ${percent(flag.stats.abovePrecision)} of them ${yes}.`,
    )
  } else {
    out.push(
      `  ${prefix}FLAG_BELOW: no threshold reaches ${percent(targets.passPrecision)} pass precision.${flag.best ? ` Best reachable: ${percent(flag.best.abovePrecision)} at ${flag.best.threshold}, passing ${flag.best.above} (${percent(flag.best.coverage)}).` : ''}`,
    )
  }
  const block = recommendation.blockBelow
  if (block.met) {
    out.push(
      `  ${prefix}BLOCK_BELOW = ${block.stats.threshold}: blocks ${block.stats.below} (${percent(1 - block.stats.coverage)} of answers), ${percent(block.stats.belowPrecision)} of them ${no}, catching ${percent(block.stats.insufficientRecall)} of all ${no}.`,
    )
  } else {
    out.push(
      `  ${prefix}BLOCK_BELOW: no threshold${flag.met ? ` at or below ${prefix}FLAG_BELOW` : ''} reaches ${percent(targets.blockPrecision)} block precision.${block.best ? ` Best reachable: ${percent(block.best.belowPrecision)} at ${block.best.threshold}, blocking ${block.best.below}.` : ''}`,
    )
  }
  out.push('')
  if (report.thresholds) {
    out.push('Put in wrangler.toml:')
    out.push('')
    out.push('[vars]')
    out.push(`${prefix}BLOCK_BELOW = ${report.thresholds.blockBelow}`)
    out.push(`${prefix}FLAG_BELOW = ${report.thresholds.flagBelow}`)
  } else {
    out.push(
      'The targets cannot both be met on this data: relax one (--pass-precision, --block-precision), or label more examples. No snippet printed.',
    )
  }
  return out.join('\n')
}
