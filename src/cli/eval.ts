import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import { REASON_POLICY } from '../guard/decision'
import type { Granularity, Judge, JudgeResult } from '../judge/judge'
import { recordCheck, type Check } from '../review/checks'
import { DataError, type Example, type ScoreRecord } from './data'
import { Progress, type ProgressStream } from './progress'

/**
 * Outcomes that judging again would not change: every reason whose policy is not `onError` (the
 * judge's reply to the example's data, or the example itself), as `REASON_POLICY` sorts them.
 * Failures of the infrastructure (timeouts, HTTP errors) are tried again.
 */
const FINAL_REASONS: ReadonlySet<string> = new Set(
  Object.entries(REASON_POLICY).flatMap(([reason, policy]) =>
    policy === 'onError' ? [] : [reason],
  ),
)

/** Whether a line without a score stays as it is when the same command runs again. */
export const isFinalReason = (reason: string): boolean => FINAL_REASONS.has(reason)

/**
 * One output line: one check's score for one example, and what it was read from — for logprobs
 * the first token and the masses, for sampling the counts of True and False among the samples —
 * with every label of the example. A groundedness line says `check`; a sufficiency line is
 * written as before there were two checks (no `check`: sufficiency).
 */
export function scoreRecord(example: Example, result: JudgeResult): ScoreRecord {
  const base = {
    id: example.id,
    ...(result.check && result.check !== 'sufficiency' ? { check: result.check } : {}),
    ...(example.sufficient === undefined ? {} : { sufficient: example.sufficient }),
    ...(example.grounded === undefined ? {} : { grounded: example.grounded }),
    latencyMs: result.latencyMs,
    model: result.model,
    promptVersion: result.promptVersion,
    ...(result.estimator ? { estimator: result.estimator } : {}),
  }
  const usage = {
    ...(result.usage
      ? { inputTokens: result.usage.inputTokens, outputTokens: result.usage.outputTokens }
      : {}),
    // Per sentence: each one's score beside the answer-level (lowest) one.
    ...(result.granularity ? { granularity: result.granularity } : {}),
    ...(result.sentences
      ? {
          sentences: result.sentences.map((sentence) =>
            sentence.ok
              ? { sentence: sentence.sentence, score: sentence.score }
              : { sentence: sentence.sentence, reason: sentence.reason },
          ),
        }
      : {}),
    ...(result.sentenceCount !== undefined ? { sentenceCount: result.sentenceCount } : {}),
  }
  if (!result.ok) {
    return {
      ...base,
      score: null,
      reason: result.reason,
      message: result.message,
      ...(result.token ? { token: result.token } : {}),
      ...(result.samples !== undefined
        ? { samples: result.samples, trueCount: result.trueCount, falseCount: result.falseCount }
        : {}),
      ...usage,
    }
  }
  const read =
    result.estimator === 'logprobs'
      ? { token: result.token }
      : {
          samples: result.samples,
          trueCount: result.trueCount,
          falseCount: result.falseCount,
          requests: result.requests,
        }
  return {
    ...base,
    score: result.score,
    pTrue: result.pTrue,
    pFalse: result.pFalse,
    mass: result.mass,
    ...read,
    ...usage,
  }
}

/**
 * The ids already judged for `check` in an output file: those with a score of it, or with a
 * reason that another try would not change. Transient failures (timeouts, HTTP errors) are
 * judged again. Lines without `check` (all lines written before there were two) are sufficiency.
 */
export function alreadyJudged(output: string, check: Check = 'sufficiency'): Set<string> {
  const done = new Set<string>()
  if (!existsSync(output)) return done
  for (const line of readFileSync(output, 'utf8').split('\n')) {
    if (!line.trim()) continue
    try {
      const record = JSON.parse(line) as Partial<ScoreRecord>
      if (typeof record.id !== 'string' || recordCheck(record) !== check) continue
      if (typeof record.score === 'number' || FINAL_REASONS.has(record.reason ?? ''))
        done.add(record.id)
      else done.delete(record.id)
    } catch {
      // A line cut short by an interruption: its example is judged again.
    }
  }
  return done
}

/**
 * The estimators of the scores already in an output file, with how many lines each. Lines
 * written before estimators existed carry none: they are `logprobs` scores.
 */
export function scoredEstimators(output: string): Map<string, number> {
  const found = new Map<string, number>()
  if (!existsSync(output)) return found
  for (const line of readFileSync(output, 'utf8').split('\n')) {
    try {
      const record = JSON.parse(line) as Partial<ScoreRecord>
      if (typeof record.score !== 'number') continue
      const estimator = record.estimator ?? 'logprobs'
      found.set(estimator, (found.get(estimator) ?? 0) + 1)
    } catch {
      // Blank, or cut short by an interruption.
    }
  }
  return found
}

/**
 * One file, one estimator: scores of two estimators are not on one scale, and a resumed run
 * would skip examples the other one scored. Throws when `output` holds another's scores.
 * (`auto` settles on one at its first call, and is not checked.)
 */
export function refuseOtherEstimators(output: string, estimator: string | undefined): void {
  if (estimator !== 'logprobs' && estimator !== 'sampling') return
  const others = [...scoredEstimators(output)].filter(([name]) => name !== estimator)
  if (others.length > 0) {
    throw new DataError(
      `${output} holds scores of another estimator (${others.map(([name, count]) => `${name}: ${count}`).join(', ')}); write the ${estimator} scores to another file (--out), so that calibration never mixes the two`,
    )
  }
}

/**
 * The most judge calls `eval` keeps in flight: past this a judge API only answers 429s faster,
 * and each call holds a worker and a connection.
 */
export const MAX_CONCURRENCY = 256

export interface EvalOptions {
  examples: Example[]
  judge: Judge
  /**
   * The checks to judge each example with, one line per example and check. Groundedness judges
   * the example's `answer`. @default ['sufficiency']
   */
  checks?: readonly Check[]
  /** The JSONL file results are appended to, one line per example as it is judged. */
  output: string
  /**
   * Groundedness: judge each answer whole, or per sentence (the line keeps the answer-level,
   * lowest, score, and each sentence's beside it). @default 'answer'
   */
  granularity?: Granularity
  /** Judge calls in flight at once (never more than the calls to make, nor {@link MAX_CONCURRENCY}). @default 4 */
  concurrency?: number
  /** Stops taking new examples (those in flight finish and are written). */
  signal?: AbortSignal
  /** Where the progress line goes. @default process.stderr */
  progress?: ProgressStream
}

/** Counted in judge calls: one per example and check. */
export interface EvalSummary {
  total: number
  skipped: number
  judged: number
  withoutScore: number
  /** The calls of this run without a score, by reason (`judge-timeout`, `unexpected-token`, …). */
  failures: Record<string, number>
  interrupted: boolean
  /** The same, per check. */
  byCheck: Partial<
    Record<Check, { total: number; skipped: number; judged: number; withoutScore: number }>
  >
}

/**
 * Judges every example with every check, skipping the (example, check) pairs already in
 * `output`, and writes each result as soon as it is known. All checks share the concurrency.
 */
export async function runEval(options: EvalOptions): Promise<EvalSummary> {
  refuseOtherEstimators(options.output, options.judge.estimator)
  const checks = options.checks?.length ? [...new Set(options.checks)] : ['sufficiency' as const]
  if (checks.includes('groundedness')) {
    const unanswered = options.examples.filter((example) => !example.answer?.trim())
    if (unanswered.length)
      throw new DataError(
        `the groundedness check judges an answer, and ${unanswered.length} example${unanswered.length === 1 ? ' has' : 's have'} none (${unanswered
          .slice(0, 5)
          .map((example) => JSON.stringify(example.id))
          .join(', ')}${unanswered.length > 5 ? ', …' : ''})`,
      )
  }
  const byCheck: EvalSummary['byCheck'] = {}
  const todo: Array<{ example: Example; check: Check }> = []
  const done = new Map(checks.map((check) => [check, alreadyJudged(options.output, check)]))
  for (const check of checks)
    byCheck[check] = { total: options.examples.length, skipped: 0, judged: 0, withoutScore: 0 }
  for (const example of options.examples) {
    for (const check of checks) {
      if (done.get(check)!.has(example.id)) byCheck[check]!.skipped++
      else todo.push({ example, check })
    }
  }
  const progress = new Progress(options.progress ?? process.stderr, todo.length, 'judging')
  let next = 0
  let judged = 0
  let withoutScore = 0
  const failures: Record<string, number> = {}
  // A line written whole: appendFileSync either writes it or throws.
  const write = (record: ScoreRecord) =>
    appendFileSync(options.output, `${JSON.stringify(record)}\n`)

  async function worker(): Promise<void> {
    while (next < todo.length && !options.signal?.aborted) {
      const { example, check } = todo[next++]!
      const result = await options.judge.judge(
        {
          question: example.question,
          context: example.context,
          ...(check === 'groundedness' ? { answer: example.answer } : {}),
        },
        {
          check,
          ...(check === 'groundedness' && options.granularity
            ? { granularity: options.granularity }
            : {}),
        },
      )
      write(scoreRecord(example, result))
      judged++
      byCheck[check]!.judged++
      if (!result.ok) {
        withoutScore++
        failures[result.reason] = (failures[result.reason] ?? 0) + 1
        byCheck[check]!.withoutScore++
      }
      progress.tick(!result.ok)
    }
  }
  // One worker per call at most: a concurrency of a billion on one example starts one worker.
  const workers = Math.min(
    Math.max(1, options.concurrency ?? 4),
    MAX_CONCURRENCY,
    Math.max(1, todo.length),
  )
  await Promise.all(Array.from({ length: workers }, worker))
  const total = options.examples.length * checks.length
  return {
    total,
    skipped: total - todo.length,
    judged,
    withoutScore,
    failures,
    interrupted: judged < todo.length,
    byCheck,
  }
}
