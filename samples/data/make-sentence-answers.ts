/**
 * Builds `halueval-sentences.jsonl`: multi-sentence answers from `halueval-qa-sample.jsonl`, for
 * judging groundedness per sentence (README, "Groundedness per sentence, and repair").
 *
 * Method, for each HaluEval item (its right and its hallucinated row share question and context):
 * 1. The grounded answer: the right answer as a sentence (a full stop added when it has none),
 *    between the two sentences of the context that share the most words with the question (ties
 *    to the earlier one), in the context's order, copied verbatim — so every sentence of it is
 *    supported by the context.
 * 2. The hallucinated answer: the same sentences with the item's hallucinated answer inserted as
 *    one more sentence, at a position chosen by a hash of the item's id (so the set is fixed, and
 *    the position is not always the same).
 * 3. Each answer is split with `Intl.Segmenter` as the guard splits it; `inserted` is the number
 *    (from 1) of the sentence that is the inserted one, `sentences` how many the answer has. An
 *    item whose inserted text is itself more than one sentence, or whose right answer is, is left
 *    out (it would not be one sentence to find).
 *
 * Fields: `id, question, context, answer, grounded, sentences[, inserted]`. The same licences as
 * the sample it is made from (MIT, HaluEval; CC BY-SA 4.0, HotpotQA): see README.md here.
 *
 * Run: `npx tsx samples/data/make-sentence-answers.ts` (rewrites the file; deterministic).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { splitSentences } from '../../src/judge/sentences'

const HERE = import.meta.dirname
const SOURCE = join(HERE, 'halueval-qa-sample.jsonl')
const TARGET = join(HERE, 'halueval-sentences.jsonl')

interface Row {
  id: string
  question: string
  context: string
  answer: string
  grounded: boolean
}

const words = (text: string) => new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])

/** The answer as a sentence: trimmed, capitalised, with a full stop when it ends without one. */
export function asSentence(text: string): string {
  const trimmed = text.trim().replace(/\s+/g, ' ')
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1)
  return /[.!?]["')\]]?$/.test(capital) ? capital : `${capital}.`
}

/** FNV-1a of a string, as an unsigned 32-bit integer. */
function hash(text: string): number {
  let value = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    value ^= text.charCodeAt(index)
    value = Math.imul(value, 0x01000193) >>> 0
  }
  return value
}

/** The two context sentences that share the most words with the question, in context order. */
function supporting(question: string, context: string): string[] {
  const asked = words(question)
  const ranked = splitSentences(context)
    .map((sentence) => ({
      text: sentence.text.trim(),
      index: sentence.index,
      overlap: [...words(sentence.text)].filter((word) => asked.has(word)).length,
    }))
    .filter((sentence) => sentence.text.length > 0)
    .sort((a, b) => b.overlap - a.overlap || a.index - b.index)
  return ranked
    .slice(0, 2)
    .sort((a, b) => a.index - b.index)
    .map((sentence) => sentence.text)
}

export interface SentenceExample extends Row {
  sentences: number
  inserted?: number
}

/** The two rows of one item: the grounded answer, and the one with the hallucination inserted. */
export function buildItem(right: Row, hallucinated: Row): SentenceExample[] | undefined {
  const base = right.id.replace(/-right$/, '')
  const correct = asSentence(right.answer)
  const invented = asSentence(hallucinated.answer)
  if (splitSentences(correct).length !== 1 || splitSentences(invented).length !== 1)
    return undefined
  const [before, after] = supporting(right.question, right.context)
  const grounded = [before, correct, after].filter((part): part is string => Boolean(part))
  const at = hash(base) % (grounded.length + 1)
  const withInvented = [...grounded.slice(0, at), invented, ...grounded.slice(at)]
  const answer = grounded.join(' ')
  const bad = withInvented.join(' ')
  const split = splitSentences(bad)
  // The inserted sentence must come out of the segmenter as one sentence of its own.
  const inserted = split.findIndex((sentence) => sentence.text.trim() === invented) + 1
  if (inserted === 0 || split.length !== splitSentences(answer).length + 1) return undefined
  return [
    {
      id: `${base}-sentences-right`,
      question: right.question,
      context: right.context,
      answer,
      grounded: true,
      sentences: splitSentences(answer).length,
    },
    {
      id: `${base}-sentences-hallucinated`,
      question: right.question,
      context: right.context,
      answer: bad,
      grounded: false,
      sentences: split.length,
      inserted,
    },
  ]
}

export function buildAll(rows: readonly Row[]): SentenceExample[] {
  const byItem = new Map<string, { right?: Row; hallucinated?: Row }>()
  for (const row of rows) {
    const item = row.id.replace(/-(right|hallucinated)$/, '')
    const pair = byItem.get(item) ?? {}
    if (row.grounded) pair.right = row
    else pair.hallucinated = row
    byItem.set(item, pair)
  }
  return [...byItem.keys()].sort().flatMap((item) => {
    const { right, hallucinated } = byItem.get(item)!
    return right && hallucinated ? (buildItem(right, hallucinated) ?? []) : []
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = readFileSync(SOURCE, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Row)
  const built = buildAll(rows)
  writeFileSync(TARGET, `${built.map((row) => JSON.stringify(row)).join('\n')}\n`)
  const items = built.length / 2
  console.log(
    `${TARGET}: ${built.length} rows from ${items} of the ${rows.length / 2} HaluEval items (${rows.length / 2 - items} left out: an answer that is not one sentence)`,
  )
}
