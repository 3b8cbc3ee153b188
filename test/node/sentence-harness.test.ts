/**
 * The multi-sentence sample and its harness (samples/data): the shipped file is what the builder
 * makes from the HaluEval sample, each inserted sentence is one sentence where the guard splits
 * it, and the stand-in answers a per-sentence prompt line by line.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createJudge } from '../../src/judge/judge'
import { splitSentences } from '../../src/judge/sentences'
import { buildAll, type SentenceExample } from '../../samples/data/make-sentence-answers'
import { hitRate } from '../../samples/data/sentence-harness'
import { startStandInModel, type StandInServer } from '../../samples/stand-in-model'

const DATA = join(import.meta.dirname, '../../samples/data')
const lines = (name: string) =>
  readFileSync(join(DATA, name), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line))

describe('halueval-sentences.jsonl', () => {
  const shipped = lines('halueval-sentences.jsonl') as SentenceExample[]

  it('is exactly what make-sentence-answers.ts builds from the HaluEval sample', () => {
    expect(buildAll(lines('halueval-qa-sample.jsonl'))).toEqual(shipped)
  })

  it('pairs a grounded answer with the same answer and one inserted sentence, numbered as the guard splits it', () => {
    expect(shipped.length).toBeGreaterThan(150)
    for (let index = 0; index < shipped.length; index += 2) {
      const [right, wrong] = [shipped[index]!, shipped[index + 1]!]
      expect(right.grounded && !wrong.grounded).toBe(true)
      const kept = splitSentences(wrong.answer)
        .filter((sentence) => sentence.index !== wrong.inserted)
        .map((sentence) => sentence.text.trim())
      expect(kept).toEqual(splitSentences(right.answer).map((sentence) => sentence.text.trim()))
      expect(wrong.sentences).toBe(right.sentences + 1)
    }
  })
})

describe('the stand-in, per sentence', () => {
  let standIn: StandInServer
  beforeAll(async () => {
    standIn = await startStandInModel()
  })
  afterAll(async () => {
    await standIn.close()
  })

  it('answers one line per sentence with each one’s P(True) at its answer token; the hit is counted', async () => {
    const judge = createJudge({ baseURL: standIn.baseURL, model: 'stand-in-word-overlap' })
    const example = {
      id: 'x',
      question: 'What does a day pass cost?',
      context: 'A day pass costs $12 and includes rides of up to 45 minutes.',
      answer: 'A day pass costs $12. Unicorns deliver the bikes on Tuesdays.',
      grounded: false,
      inserted: 2,
    }
    const result = await judge.judge(example, { check: 'groundedness', granularity: 'sentence' })
    expect(result).toMatchObject({ ok: true, granularity: 'sentence' })
    const scores = result.sentences!.map((sentence) => (sentence.ok ? sentence.score : NaN))
    expect(scores[0]).toBeGreaterThan(0.9)
    expect(scores[1]).toBeLessThan(0.1)
    expect(hitRate([{ example, result }])).toEqual({ hits: 1, counted: 1, rate: 1 })
    const sampled = await createJudge({
      baseURL: standIn.baseURL,
      model: 'stand-in-word-overlap',
      estimator: 'sampling',
    }).judge(example, { check: 'groundedness', granularity: 'sentence' })
    expect(sampled).toMatchObject({ ok: true, estimator: 'sampling', granularity: 'sentence' })
    expect(sampled.sentences).toHaveLength(2)
  })
})
