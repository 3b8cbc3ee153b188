import { smoothedShare } from '../judge/estimators/sampling'
import { DataError, parseLabel } from './data'
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

const labelOf = (line: Line) => parseLabel(line.sufficient ?? line.label)

/**
 * Reads `rag-guard eval` output, or the Worker's decision log joined with a labels file (by
 * `requestId`, else by `questionHash` and `contextHash`). For an id seen twice, the last line
 * wins (a resumed eval appends the new try).
 */
export function loadScores(
  text: string,
  source: string,
  labelsText?: string,
  estimator?: Estimator,
): LoadedScores {
  const lines: Line[] = []
  text.split(/\r?\n/).forEach((raw, index) => {
    if (!raw.trim()) return
    let line: Line
    try {
      line = JSON.parse(raw) as Line
    } catch {
      throw new DataError(`${source}:${index + 1}: not JSON`)
    }
    const nested = nestedDecisions(line)
    lines.push(...(nested.length ? nested : [line]))
  })
  const decisions = lines.filter((line) => line.message === 'rag-guard decision')
  const isLog = decisions.length > 0

  let labelFor: (line: Line) => boolean | undefined = labelOf
  if (isLog) {
    if (labelsText === undefined) {
      throw new DataError(
        `${source} is a decision log: give the labels with --labels <file> (lines with requestId or questionHash/contextHash, and sufficient or label)`,
      )
    }
    const byRequest = new Map<string, boolean>()
    const byHashes = new Map<string, boolean>()
    labelsText.split(/\r?\n/).forEach((raw, index) => {
      if (!raw.trim()) return
      let label: Line
      try {
        label = JSON.parse(raw) as Line
      } catch {
        throw new DataError(`labels:${index + 1}: not JSON`)
      }
      const value = labelOf(label)
      if (value === undefined)
        throw new DataError(`labels:${index + 1}: no usable "sufficient" or "label"`)
      if (typeof label.requestId === 'string') byRequest.set(label.requestId, value)
      if (typeof label.questionHash === 'string')
        byHashes.set(`${label.questionHash}/${label.contextHash ?? ''}`, value)
    })
    labelFor = (line) =>
      (typeof line.requestId === 'string' ? byRequest.get(line.requestId) : undefined) ??
      byHashes.get(`${line.questionHash}/${line.contextHash ?? ''}`) ??
      byHashes.get(`${line.questionHash}/`)
  }

  const latest = new Map<string, Line>()
  ;(isLog ? decisions : lines).forEach((line, index) => {
    const id = String(line.id ?? line.requestId ?? `line-${index + 1}`)
    latest.delete(id) // re-insert, so the order follows the last occurrence
    latest.set(id, line)
  })

  // One estimator at a time: a logprobs score of 0.6 and a sampling score of 0.58 (3 of 5) are
  // not on one scale, and thresholds fitted to both fit neither.
  const scored = new Map<string, number>()
  for (const line of latest.values()) {
    const name = estimatorOf(line)
    if (typeof line.score === 'number' && name) scored.set(name, (scored.get(name) ?? 0) + 1)
  }
  const counted = () => [...scored].map(([name, count]) => `${name} ${count}`).join(', ')
  if (!estimator && scored.size > 1) {
    throw new DataError(
      `${source} mixes scores of two estimators (${counted()}), which are not on one scale: calibrate one at a time with --estimator ${[...scored.keys()].join(' or --estimator ')}`,
    )
  }
  const chosen = estimator ?? (scored.keys().next().value as Estimator | undefined) ?? 'logprobs'

  const examples: ScoredExample[] = []
  const withoutScore: Record<string, number> = {}
  const otherEstimators: Record<string, number> = {}
  const sampleCounts = new Set<number>()
  let unlabeled = 0
  const models = new Set<string>()
  const promptVersions = new Set<string>()
  for (const [id, line] of latest) {
    const name = estimatorOf(line)
    if (name !== undefined && name !== chosen) {
      if (typeof line.score === 'number') otherEstimators[name] = (otherEstimators[name] ?? 0) + 1
      continue
    }
    if (typeof line.model === 'string') models.add(line.model)
    if (typeof line.promptVersion === 'string') promptVersions.add(line.promptVersion)
    if (typeof line.score !== 'number' || !Number.isFinite(line.score)) {
      const reason = typeof line.reason === 'string' ? line.reason : 'no-score'
      withoutScore[reason] = (withoutScore[reason] ?? 0) + 1
      continue
    }
    const sufficient = labelFor(line)
    if (sufficient === undefined) {
      unlabeled++
      continue
    }
    if (typeof line.samples === 'number') sampleCounts.add(line.samples)
    examples.push({ id, score: Math.min(1, Math.max(0, line.score)), sufficient })
  }
  if (examples.length === 0)
    throw new DataError(
      `${source}: no labeled example with a score${estimator ? ` from the ${estimator} estimator${scored.size ? ` (it holds ${counted()})` : ''}` : ''}`,
    )
  return {
    examples,
    withoutScore,
    unlabeled,
    models: [...models],
    promptVersions: [...promptVersions],
    source: isLog ? 'decision-log' : 'eval',
    estimator: chosen,
    otherEstimators,
    sampleCounts: [...sampleCounts].sort((a, b) => a - b),
  }
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
  }
}

const percent = (value: number) => (Number.isNaN(value) ? '–' : `${(value * 100).toFixed(1)}%`)
const fixed = (value: number) => (Number.isNaN(value) ? '–' : value.toFixed(3))

/** The report as text, for the terminal. */
export function formatCalibration(report: CalibrationReport): string {
  const { loaded, counts, targets, recommendation } = report
  const out: string[] = []
  out.push(
    `RAG Guard calibration: ${counts.total} labeled examples (${counts.sufficient} sufficient, ${counts.insufficient} insufficient) from ${loaded.source === 'eval' ? 'rag-guard eval' : 'the decision log'}`,
  )
  out.push(
    `judge: ${loaded.models.join(', ') || 'unknown'} · prompt: ${loaded.promptVersions.join(', ') || 'unknown'} · estimator: ${loaded.estimator}`,
  )
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
    `AUROC ${fixed(report.auroc)}   AUPRC (insufficient) ${fixed(report.auprc)}   Brier ${fixed(report.brier)}   ECE (${report.eceBins} equal bins) ${fixed(report.ece)}`,
  )
  out.push('')
  const header = [
    'threshold',
    'passed (≥)',
    'pass precision',
    'sufficient recall',
    'blocked (<)',
    'block precision',
    'insufficient recall',
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
    `Targets: of the answers passed, at least ${percent(targets.passPrecision)} have sufficient context; of those blocked, at least ${percent(targets.blockPrecision)} truly lack it (each side with ${targets.minCount ?? 10}+ examples).`,
  )
  const flag = recommendation.flagBelow
  if (flag.met) {
    out.push(
      `  FLAG_BELOW = ${flag.stats.threshold}: passes ${flag.stats.above} (${percent(flag.stats.coverage)} of answers), ${percent(flag.stats.abovePrecision)} of them sufficient.`,
    )
  } else {
    out.push(
      `  FLAG_BELOW: no threshold reaches ${percent(targets.passPrecision)} pass precision.${flag.best ? ` Best reachable: ${percent(flag.best.abovePrecision)} at ${flag.best.threshold}, passing ${flag.best.above} (${percent(flag.best.coverage)}).` : ''}`,
    )
  }
  const block = recommendation.blockBelow
  if (block.met) {
    out.push(
      `  BLOCK_BELOW = ${block.stats.threshold}: blocks ${block.stats.below} (${percent(1 - block.stats.coverage)} of answers), ${percent(block.stats.belowPrecision)} of them insufficient, catching ${percent(block.stats.insufficientRecall)} of all insufficient.`,
    )
  } else {
    out.push(
      `  BLOCK_BELOW: no threshold${flag.met ? ' at or below FLAG_BELOW' : ''} reaches ${percent(targets.blockPrecision)} block precision.${block.best ? ` Best reachable: ${percent(block.best.belowPrecision)} at ${block.best.threshold}, blocking ${block.best.below}.` : ''}`,
    )
  }
  out.push('')
  if (report.thresholds) {
    out.push('Put in wrangler.toml:')
    out.push('')
    out.push('[vars]')
    out.push(`BLOCK_BELOW = ${report.thresholds.blockBelow}`)
    out.push(`FLAG_BELOW = ${report.thresholds.flagBelow}`)
  } else {
    out.push(
      'The targets cannot both be met on this data: relax one (--pass-precision, --block-precision), or label more examples. No snippet printed.',
    )
  }
  return out.join('\n')
}
