import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import type { Judge, JudgeResult } from '../judge/judge'
import { DataError, type Example, type ScoreRecord } from './data'
import { Progress, type ProgressStream } from './progress'

/** Outcomes that come from the model's answer itself: judging again would give the same. */
const FINAL_REASONS = new Set([
  'unexpected-token',
  'no-logprobs',
  'no-content-tokens',
  'no-samples',
  'no-question',
  'no-context',
])

/**
 * One output line: the score and what it was read from — for logprobs the first token and
 * the masses, for sampling the counts of True and False among the samples.
 */
export function scoreRecord(example: Example, result: JudgeResult): ScoreRecord {
  const base = {
    id: example.id,
    ...(example.sufficient === undefined ? {} : { sufficient: example.sufficient }),
    latencyMs: result.latencyMs,
    model: result.model,
    promptVersion: result.promptVersion,
    ...(result.estimator ? { estimator: result.estimator } : {}),
  }
  const usage = result.usage
    ? { inputTokens: result.usage.inputTokens, outputTokens: result.usage.outputTokens }
    : {}
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
 * The ids already judged in an output file: those with a score, or with a reason that another
 * try would not change. Transient failures (timeouts, HTTP errors) are judged again.
 */
export function alreadyJudged(output: string): Set<string> {
  const done = new Set<string>()
  if (!existsSync(output)) return done
  for (const line of readFileSync(output, 'utf8').split('\n')) {
    if (!line.trim()) continue
    try {
      const record = JSON.parse(line) as Partial<ScoreRecord>
      if (typeof record.id !== 'string') continue
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

export interface EvalOptions {
  examples: Example[]
  judge: Judge
  /** The JSONL file results are appended to, one line per example as it is judged. */
  output: string
  /** Judge calls in flight at once. @default 4 */
  concurrency?: number
  /** Stops taking new examples (those in flight finish and are written). */
  signal?: AbortSignal
  /** Where the progress line goes. @default process.stderr */
  progress?: ProgressStream
}

export interface EvalSummary {
  total: number
  skipped: number
  judged: number
  withoutScore: number
  interrupted: boolean
}

/** Judges every example not yet in `output`, writing each result as soon as it is known. */
export async function runEval(options: EvalOptions): Promise<EvalSummary> {
  refuseOtherEstimators(options.output, options.judge.estimator)
  const done = alreadyJudged(options.output)
  const todo = options.examples.filter((example) => !done.has(example.id))
  const progress = new Progress(options.progress ?? process.stderr, todo.length, 'judging')
  let next = 0
  let judged = 0
  let withoutScore = 0
  // A line written whole: appendFileSync either writes it or throws.
  const write = (record: ScoreRecord) =>
    appendFileSync(options.output, `${JSON.stringify(record)}\n`)

  async function worker(): Promise<void> {
    while (next < todo.length && !options.signal?.aborted) {
      const example = todo[next++]!
      const result = await options.judge.judge({
        question: example.question,
        context: example.context,
      })
      write(scoreRecord(example, result))
      judged++
      if (!result.ok) withoutScore++
      progress.tick(!result.ok)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker))
  return {
    total: options.examples.length,
    skipped: options.examples.length - todo.length,
    judged,
    withoutScore,
    interrupted: judged < todo.length,
  }
}
