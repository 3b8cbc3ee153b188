/**
 * Answer-level against sentence-level groundedness, measured (README, "Groundedness per
 * sentence, and repair"): on `halueval-qa-sample.jsonl` and on the multi-sentence answers of
 * `halueval-sentences.jsonl` (made by `make-sentence-answers.ts`: a grounded answer, and the same
 * with one hallucinated sentence inserted), it judges every answer's groundedness at both
 * granularities and reports
 * - the answer-level AUROC of each granularity (grounded against hallucinated answers; at
 *   sentence granularity the answer's score is its lowest sentence's), and
 * - the sentence-level hit rate: of the hallucinated multi-sentence answers judged per sentence,
 *   how often the inserted sentence is the lowest-scoring one (a tie for lowest counts 1/k).
 *
 * With `OPENAI_API_KEY` set it asks the real judge (`JUDGE_MODEL`, default gpt-4o-mini;
 * `OPENAI_BASE_URL` for another server): 2 × 384 calls, about 0.3 M input tokens. Without it (or
 * with `--stand-in`) it starts the stand-in model, which is NOT a language model: its P(True) is
 * word overlap between a sentence and the documents, so its figures only show that the harness
 * runs, not how well a judge finds hallucinations.
 *
 * Run: `npx tsx samples/data/sentence-harness.ts [--stand-in] [--limit n] [--out results.json]`.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { auroc } from '../../src/cli/metrics'
import { createJudge, type Granularity, type JudgeResult } from '../../src/judge/judge'
import { STAND_IN_NOTICE, startStandInModel } from '../stand-in-model'

interface Example {
  id: string
  question: string
  context: string
  answer: string
  grounded: boolean
  inserted?: number
}

const HERE = import.meta.dirname
const read = (name: string, limit: number): Example[] =>
  readFileSync(join(HERE, name), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Example)
    .slice(0, limit)

/** Runs `work` over `items`, `concurrency` at a time, in order of the results. */
async function pool<T, R>(items: T[], concurrency: number, work: (item: T) => Promise<R>) {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++
        results[index] = await work(items[index]!)
      }
    }),
  )
  return results
}

/** How often the inserted sentence is the lowest-scoring one (a tie for lowest counts 1/k). */
export function hitRate(judged: Array<{ example: Example; result: JudgeResult }>) {
  let hits = 0
  let counted = 0
  for (const { example, result } of judged) {
    if (example.grounded || example.inserted === undefined || !result.ok) continue
    if (result.granularity !== 'sentence' || !result.sentences) continue
    const scores = result.sentences.map((sentence) => (sentence.ok ? sentence.score : Infinity))
    const lowest = Math.min(...scores)
    const tied = scores.flatMap((score, index) => (score === lowest ? [index + 1] : []))
    counted++
    if (tied.includes(example.inserted)) hits += 1 / tied.length
  }
  return { hits, counted, rate: counted ? hits / counted : NaN }
}

async function main() {
  const { values } = parseArgs({
    options: {
      'stand-in': { type: 'boolean' },
      limit: { type: 'string' },
      out: { type: 'string' },
      concurrency: { type: 'string' },
    },
  })
  const limit = values.limit ? Number(values.limit) : Infinity
  const real = Boolean(process.env.OPENAI_API_KEY) && !values['stand-in']
  const standIn = real ? undefined : await startStandInModel()
  const judge = createJudge(
    real
      ? {
          apiKey: process.env.OPENAI_API_KEY,
          baseURL: process.env.OPENAI_BASE_URL,
          model: process.env.JUDGE_MODEL ?? 'gpt-4o-mini',
          timeoutMs: 60_000,
          maxRetries: 3,
        }
      : { baseURL: standIn!.baseURL, model: 'stand-in-word-overlap', maxRetries: 0 },
  )
  if (!real) console.log(`${STAND_IN_NOTICE}\n(set OPENAI_API_KEY to measure a real judge)\n`)
  const concurrency = Number(values.concurrency ?? (real ? 8 : 16))
  const sets = {
    'halueval-qa-sample (as is)': read('halueval-qa-sample.jsonl', limit),
    'halueval-sentences (one sentence inserted)': read('halueval-sentences.jsonl', limit),
  }
  const report: Record<string, unknown> = { judge: judge.model, real }
  try {
    for (const [name, examples] of Object.entries(sets)) {
      const row: Record<string, unknown> = { examples: examples.length }
      for (const granularity of ['answer', 'sentence'] as Granularity[]) {
        const judged = await pool(examples, concurrency, async (example) => ({
          example,
          result: await judge.judge(
            { question: example.question, context: example.context, answer: example.answer },
            { check: 'groundedness', granularity },
          ),
        }))
        const scored = judged.flatMap(({ example, result }) =>
          result.ok ? [{ score: result.score, sufficient: example.grounded }] : [],
        )
        const tokens = judged.reduce(
          (sum, { result }) => ({
            input: sum.input + (result.usage?.inputTokens ?? 0),
            output: sum.output + (result.usage?.outputTokens ?? 0),
          }),
          { input: 0, output: 0 },
        )
        row[granularity] = {
          auroc: Number(auroc(scored).toFixed(4)),
          withoutScore: judged.length - scored.length,
          ...(real ? { inputTokens: tokens.input, outputTokens: tokens.output } : {}),
          ...(granularity === 'sentence' && examples.some((example) => example.inserted)
            ? { hitRate: hitRate(judged) }
            : {}),
        }
      }
      report[name] = row
      console.log(`${name}: ${JSON.stringify(row)}`)
    }
  } finally {
    await standIn?.close()
  }
  if (values.out) writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`)
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
