import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import type { Judge } from '../judge/judge'
import type { Example, ScoreRecord } from './data'
import { Progress, type ProgressStream } from './progress'

/** Outcomes that come from the model's answer itself: judging again would give the same. */
const FINAL_REASONS = new Set([
  'unexpected-token',
  'no-logprobs',
  'no-content-tokens',
  'no-question',
  'no-context',
])

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
      const base = {
        id: example.id,
        ...(example.sufficient === undefined ? {} : { sufficient: example.sufficient }),
        latencyMs: result.latencyMs,
        model: result.model,
        promptVersion: result.promptVersion,
      }
      const usage = result.usage
        ? { inputTokens: result.usage.inputTokens, outputTokens: result.usage.outputTokens }
        : {}
      write(
        result.ok
          ? {
              ...base,
              score: result.score,
              pTrue: result.pTrue,
              pFalse: result.pFalse,
              mass: result.mass,
              token: result.token,
              ...usage,
            }
          : {
              ...base,
              score: null,
              reason: result.reason,
              message: result.message,
              ...(result.token ? { token: result.token } : {}),
              ...usage,
            },
      )
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
