/**
 * Groundedness per sentence in the LangChain forms: the verdict carries each sentence's score,
 * and repair replaces the agent's final AI message (keeping its id) or the chain's answer with
 * the answer less its unsupported sentences. Real `ChatOpenAI` models against the stub server.
 */
import '@langchain/core/context'
import type { AIMessage } from '@langchain/core/messages'
import { createAgent } from 'langchain'
import { describe, expect, it } from 'vitest'
import { SENTENCE_PROMPT_VERSION } from '../../src/judge/prompt'
import {
  RAG_GUARD_KEY,
  RagGuardBlockedError,
  ragGuardMiddleware,
  ragGuardRunnable,
  type RagGuardVerdict,
} from '../../src/langchain'
import { scriptModel } from '../helpers'
import { judgeLines } from '../guard-helpers'
import type { StubStep } from '../stub/openai-stub'
import {
  answerModel,
  answers,
  callsTool,
  FALLBACK,
  judgeModel,
  QUESTION,
  retrievalChain,
  searchDocs,
} from './helpers'

const S1 = 'A day pass costs $12.'
const S2 = 'It includes rides of up to 45 minutes.'
const S3 = 'Children ride free.'
const ANSWER = `${S1} ${S2} ${S3}`

async function guardedAgent(judgeStep: StubStep, options: Record<string, unknown> = {}) {
  const model = await scriptModel({
    steps: [callsTool(), { ...answers(ANSWER), id: 'chatcmpl-the-answer' }],
  })
  const judge = await scriptModel(judgeStep)
  const agent = createAgent({
    model: answerModel(model),
    tools: [searchDocs],
    middleware: [
      ragGuardMiddleware({
        judge: { chatModel: judgeModel(judge) },
        checks: ['groundedness'],
        groundednessGranularity: 'sentence',
        onUngrounded: 'repair',
        ...options,
      }),
    ],
  })
  const result = await agent.invoke({ messages: [{ role: 'user', content: QUESTION }] })
  const last = result.messages.at(-1) as AIMessage
  return {
    answer: last,
    verdict: (result as unknown as { ragGuard?: RagGuardVerdict }).ragGuard,
    metadata: last.response_metadata[RAG_GUARD_KEY] as RagGuardVerdict | undefined,
  }
}

describe('ragGuardMiddleware at sentence granularity', () => {
  it('repair: the final AI message loses its unsupported sentence and keeps its id; flagged, repaired', async () => {
    const { answer, verdict, metadata } = await guardedAgent(judgeLines(0.95, 0.9, 0.02))
    expect(answer.content).toBe(`${S1} ${S2}`)
    expect(answer.id).toBe('chatcmpl-the-answer')
    expect(verdict).toMatchObject({
      verdict: 'flag',
      applied: true,
      reason: 'repaired',
      repaired: { removed: [3], sentences: 3 },
      promptVersion: SENTENCE_PROMPT_VERSION,
      score: expect.closeTo(0.02, 9),
      sentences: [
        { sentence: 1, verdict: 'pass', score: expect.closeTo(0.95, 9) },
        { sentence: 2, verdict: 'pass', score: expect.closeTo(0.9, 9) },
        { sentence: 3, verdict: 'block', score: expect.closeTo(0.02, 9) },
      ],
    })
    expect(metadata).toMatchObject({ reason: 'repaired', repaired: { removed: [3] } })
  })

  it('more than half unsupported: the fallback, as a block', async () => {
    const { answer, verdict } = await guardedAgent(judgeLines(0.95, 0.05, 0.02))
    expect(answer.content).toBe(FALLBACK)
    expect(verdict).toMatchObject({ verdict: 'block', applied: true })
  })

  it('exitBehavior "error" throws on a block, not on a repair', async () => {
    await expect(
      guardedAgent(judgeLines(0.95, 0.9, 0.02), { exitBehavior: 'error' }),
    ).resolves.toMatchObject({ verdict: { reason: 'repaired' } })
    await expect(
      guardedAgent(judgeLines(0.05, 0.9, 0.02), { exitBehavior: 'error' }),
    ).rejects.toBeInstanceOf(RagGuardBlockedError)
  })

  it('shadow: the answer is untouched; the verdict says what repair would have done', async () => {
    const { answer, verdict } = await guardedAgent(judgeLines(0.95, 0.9, 0.02), {
      mode: 'shadow',
    })
    expect(answer.content).toBe(ANSWER)
    expect(verdict).toMatchObject({ verdict: 'flag', applied: false, reason: 'repaired' })
  })
})

describe('ragGuardRunnable at sentence granularity', () => {
  async function guardedChain(judgeStep: StubStep, options: Record<string, unknown> = {}) {
    const model = await scriptModel({ content: ANSWER })
    const judge = await scriptModel(judgeStep)
    return ragGuardRunnable(retrievalChain(model), {
      judge: { chatModel: judgeModel(judge) },
      checks: ['groundedness'],
      groundednessGranularity: 'sentence',
      ...options,
    })
  }

  it('the verdict carries each sentence’s score; without repair a low sentence blocks', async () => {
    const guarded = await guardedChain(judgeLines(0.95, 0.02, 0.9))
    const output = (await guarded.invoke({ input: QUESTION })) as {
      answer: string
      ragGuard: RagGuardVerdict
    }
    expect(output.answer).toBe(FALLBACK)
    expect(output.ragGuard.sentences?.map((sentence) => sentence.score)).toEqual([
      expect.closeTo(0.95, 9),
      expect.closeTo(0.02, 9),
      expect.closeTo(0.9, 9),
    ])
  })

  it('invoke with repair: the answer where "answer" points is repaired', async () => {
    const guarded = await guardedChain(judgeLines(0.95, 0.02, 0.9), { onUngrounded: 'repair' })
    const output = (await guarded.invoke({ input: QUESTION })) as {
      answer: string
      ragGuard: RagGuardVerdict
    }
    expect(output.answer).toBe(`${S1} ${S3}`)
    expect(output.ragGuard).toMatchObject({ verdict: 'flag', applied: true, reason: 'repaired' })
  })

  it('a missing line is unjudgeable (missing-sentence-answer), with the sentences that were read', async () => {
    const guarded = await guardedChain(judgeLines(0.95, 0.9))
    const output = (await guarded.invoke({ input: QUESTION })) as { ragGuard: RagGuardVerdict }
    expect(output.ragGuard).toMatchObject({
      verdict: 'block',
      reason: 'missing-sentence-answer',
      sentences: [
        { sentence: 1, score: expect.closeTo(0.95, 9) },
        { sentence: 2, score: expect.closeTo(0.9, 9) },
        { sentence: 3, verdict: 'block', reason: 'missing-sentence-answer' },
      ],
    })
  })

  it('a held stream with repair: the answer chunks become one with the repaired answer, then the verdict', async () => {
    const guarded = await guardedChain(judgeLines(0.95, 0.9, 0.02), { onUngrounded: 'repair' })
    const chunks: Array<Record<string, unknown>> = []
    for await (const chunk of await guarded.stream({ input: QUESTION }))
      chunks.push(chunk as Record<string, unknown>)
    expect(chunks.filter((chunk) => 'answer' in chunk)).toEqual([{ answer: `${S1} ${S2}` }])
    expect(chunks).toContainEqual({ input: QUESTION })
    expect(chunks.at(-1)).toEqual({
      ragGuard: expect.objectContaining({ verdict: 'flag', applied: true, reason: 'repaired' }),
    })
  })

  it('an annotated stream is never repaired: every chunk goes out, and the verdict reports the block', async () => {
    const guarded = await guardedChain(judgeLines(0.95, 0.9, 0.02), {
      onUngrounded: 'repair',
      streamMode: 'annotate',
    })
    const chunks: Array<Record<string, unknown>> = []
    for await (const chunk of await guarded.stream({ input: QUESTION }))
      chunks.push(chunk as Record<string, unknown>)
    const answer = chunks.map((chunk) => (chunk.answer as string | undefined) ?? '').join('')
    expect(answer).toBe(ANSWER)
    expect(chunks.at(-1)).toEqual({
      ragGuard: expect.objectContaining({ verdict: 'block', applied: false }),
    })
  })

  it('a shadow stream goes out as the chain sent it; the verdict says what repair would have done', async () => {
    const seen: RagGuardVerdict[] = []
    const guarded = await guardedChain(judgeLines(0.95, 0.9, 0.02), {
      onUngrounded: 'repair',
      mode: 'shadow',
      onVerdict: (verdict: RagGuardVerdict) => seen.push(verdict),
    })
    const chunks: Array<Record<string, unknown>> = []
    for await (const chunk of await guarded.stream({ input: QUESTION }))
      chunks.push(chunk as Record<string, unknown>)
    const answer = chunks.map((chunk) => (chunk.answer as string | undefined) ?? '').join('')
    expect(answer).toBe(ANSWER)
    await expect.poll(() => seen.length).toBe(1)
    expect(seen[0]).toMatchObject({ verdict: 'flag', applied: false, reason: 'repaired' })
  })
})
