/**
 * Sentence-level groundedness: the answer split into sentences, and the judge's per-line reply
 * (`1: True`, `2: False`, …) read back as one answer per sentence. Pure: no I/O.
 *
 * Sentences come from `Intl.Segmenter` with `granularity: 'sentence'` (Unicode UAX #29 sentence
 * boundaries, as the runtime's ICU implements them; in Workers and Node alike), so abbreviations
 * and scripts without spaces (Chinese, Japanese) are the runtime's business, not a heuristic of
 * ours. Each segment keeps its trailing whitespace, so the kept sentences of a repaired answer
 * join back as they were written.
 */
import { isRecord } from '../json'
import type { TokenLogprob } from './scoring'

/** One sentence of an answer, as the judge numbers it (from 1). */
export interface Sentence {
  /** Its number, from 1. */
  index: number
  /** Its text as written, trailing whitespace included. */
  text: string
}

/** The granularity of the groundedness check: the whole answer, or each sentence. */
export const GRANULARITIES = ['answer', 'sentence'] as const
export type Granularity = (typeof GRANULARITIES)[number]

/** Output tokens one line of the reply takes: the number, `:`, ` True`/` False`, a newline; one spare. */
export const SENTENCE_LINE_TOKENS = 5

let segmenter: Intl.Segmenter | undefined

/**
 * The sentences of `text`, numbered from 1; segments that are only whitespace belong to the
 * sentence before them (or, at the start, are dropped), so every sentence has something to judge.
 */
export function splitSentences(text: string): Sentence[] {
  segmenter ??= new Intl.Segmenter(undefined, { granularity: 'sentence' })
  const sentences: Sentence[] = []
  for (const { segment } of segmenter.segment(text)) {
    const last = sentences[sentences.length - 1]
    if (segment.trim() === '') {
      if (last) last.text += segment
      continue
    }
    sentences.push({ index: sentences.length + 1, text: segment })
  }
  return sentences
}

/** A sentence's text as the judge sees it: on one line, without surrounding whitespace. */
export const judgedText = (sentence: Sentence) => sentence.text.replace(/\s+/g, ' ').trim()

/** Where one sentence's answer word starts in the reply, or why it has none. */
export type LineAnswer =
  | { ok: true; sentence: number; word: string; start: number }
  | { ok: false; sentence: number; reason: 'missing-sentence-answer'; message: string }

/**
 * One reply line: an optional bracket, the sentence number, an optional separator (`:`, `.`,
 * `)`, `-`), then the answer word. What the prompt asks for is `3: True`.
 */
const LINE = /^[ \t*]*\[?(\d{1,4})\]?[ \t]*[:.)\-]?[ \t]*\**[ \t]*([^\s*]+)/gm

/**
 * Each of `count` sentences' line in a reply's text: line k must be the k-th numbered line and
 * carry the number k. A sentence whose line is missing (the reply stopped short, skipped it) or
 * out of order (another number in its place) has no answer: `missing-sentence-answer`. A
 * `<think>` block before the lines (self-hosted reasoning models) is skipped.
 */
export function readLines(text: string, count: number): LineAnswer[] {
  const thinking = /^\s*<think>[\s\S]*?<\/think>/i.exec(text)
  const offset = thinking ? thinking[0].length : 0
  const lines = [...text.slice(offset).matchAll(LINE)]
  return Array.from({ length: count }, (_, position): LineAnswer => {
    const sentence = position + 1
    const line = lines[position]
    if (!line) {
      return {
        ok: false,
        sentence,
        reason: 'missing-sentence-answer',
        message: `the judge gave no line for sentence ${sentence}`,
      }
    }
    if (Number(line[1]) !== sentence) {
      return {
        ok: false,
        sentence,
        reason: 'missing-sentence-answer',
        message: `the judge's line ${sentence} is numbered ${line[1]}: its lines are out of order`,
      }
    }
    const word = line[2]!
    const start = offset + line.index + line[0].length - word.length
    return { ok: true, sentence, word, start }
  })
}

/**
 * The reply's text rebuilt from its logprobs tokens, and each token's start in it, so that the
 * token at an answer word's position can be found.
 */
export function tokenText(content: readonly unknown[]): { text: string; starts: number[] } {
  let text = ''
  const starts: number[] = []
  for (const token of content) {
    starts.push(text.length)
    text += isRecord(token) && typeof token.token === 'string' ? token.token : ''
  }
  return { text, starts }
}

/**
 * The tokens from the one that holds character `at` of the reply (an answer word's first
 * character) onward: what `scoreLogprobs` reads as "the first token" for that sentence. A token
 * that starts before the word (` True` starts at its space) is the word's token; one that holds
 * more than the word (`: True`) is then read as it is, and is neither True nor False.
 */
export function tokensFrom(
  content: readonly TokenLogprob[],
  starts: readonly number[],
  at: number,
): TokenLogprob[] {
  let index = 0
  while (index + 1 < starts.length && starts[index + 1]! <= at) index++
  return content.slice(index)
}
