/**
 * Issue 24, the second round's property: for any reply the judge can give — any first token,
 * any logprobs (or none), a refusal, a content filter, any JSON where the logprobs go — an
 * enforced check never delivers an answer whose checks did not each pass or flag by their
 * thresholds. Delivered means the upstream's (the chain's, the agent's) answer reached the
 * client; then every check has a score, no reason, and a score at or above its `blockBelow`.
 * In the Worker, and in both LangChain forms.
 */
import { createAgent } from 'langchain'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ragGuardMiddleware, ragGuardRunnable, type RagGuardVerdict } from '../../src/langchain'
import { judgeSays } from '../guard-helpers'
import { scriptModel } from '../helpers'
import { DATA_REPLIES, judgeReply } from '../judge-replies'
import {
  ANSWER,
  answerModel,
  answers,
  callsTool,
  judgeModel,
  QUESTION,
  retrievalChain,
  searchDocs,
} from '../langchain/helpers'
import type { StubStep } from '../stub/openai-stub'
import { post, secureGuard, UPSTREAM_ANSWER } from './helpers'

const BLOCK_BELOW = 0.2

const token = fc.oneof(
  fc.constantFrom('True', 'False', ' true', 'FALSE', 'ĠTrue', '▁False', 'Yes', 'Maybe', '', ' '),
  fc.string({ maxLength: 6 }),
)
const logprob = fc.oneof(
  { weight: 5, arbitrary: fc.double({ min: -30, max: 0, noNaN: true }) },
  { weight: 1, arbitrary: fc.constant(-9999) },
)
const alternatives = fc.array(fc.record({ token, logprob }), { maxLength: 6 })
const anyJson = fc.jsonValue({ maxDepth: 3 })

/** Any reply the judge API can give with status 200. */
export const judgeReplies: fc.Arbitrary<StubStep> = fc.oneof(
  // A healthy judge, at any score: some answers are delivered, so the property is not vacuous.
  {
    weight: 2,
    arbitrary: fc.double({ min: 0.01, max: 0.99, noNaN: true }).map((p) => judgeSays(p)),
  },
  { weight: 6, arbitrary: fc.record({ token, logprob, topLogprobs: alternatives }) },
  { weight: 1, arbitrary: token.map((first) => ({ token: first, noLogprobs: true })) },
  { weight: 2, arbitrary: fc.constantFrom(...DATA_REPLIES.map(([, reply]) => reply)) },
  {
    weight: 1,
    // A filtered reply that still carries a confident True.
    arbitrary: fc.constant(
      judgeReply({
        message: { role: 'assistant', content: 'True' },
        logprobs: {
          content: [
            {
              token: 'True',
              logprob: 0,
              bytes: null,
              top_logprobs: [{ token: 'True', logprob: 0 }],
            },
          ],
        },
        finish_reason: 'content_filter',
      }),
    ),
  },
  {
    weight: 2,
    // Anything where the logprobs go, and any finish reason.
    arbitrary: fc
      .tuple(anyJson, fc.constantFrom('stop', 'length', 'content_filter', null))
      .map(([logprobs, finish]) =>
        judgeReply({
          message: { role: 'assistant', content: 'True' },
          logprobs,
          finish_reason: finish,
        }),
      ),
  },
)

/** Whether a verdict's every check has a score at or above its blockBelow, and no reason. */
function scoredWithin(verdict: RagGuardVerdict): boolean {
  const parts = verdict.checks ? Object.values(verdict.checks) : [verdict]
  return (
    verdict.verdict !== 'block' &&
    parts.every(
      (part) => part.reason === undefined && part.score !== undefined && part.score >= BLOCK_BELOW,
    )
  )
}

describe('property: no judge reply gets an answer past an enforced check unscored', () => {
  it('the Worker (both checks): a delivered answer has every check scored within its thresholds', async () => {
    const seen = { delivered: 0, withheld: 0 }
    await fc.assert(
      fc.asyncProperty(judgeReplies, async (reply) => {
        const { send } = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, reply, {
          GUARD_ROUTES: [
            {
              path: '/ask',
              format: 'json',
              answer: '/answer',
              checks: ['sufficiency', 'groundedness'],
            },
          ],
        })
        const response = await send(
          '/ask',
          post({ question: 'Which company makes the bikes?', context: ['The bikes are blue.'] }),
          'operator',
        )
        const text = await response.text()
        if (!text.includes(UPSTREAM_ANSWER)) return void seen.withheld++
        seen.delivered++
        expect(response.headers.get('x-rag-guard-verdict')).toMatch(/^(pass|flag)$/)
        expect(response.headers.get('x-rag-guard-reason')).toBeNull()
        const scores = (response.headers.get('x-rag-guard-scores') ?? '')
          .split(', ')
          .map((pair) => Number(pair.split('=')[1]))
        expect(scores).toHaveLength(2)
        for (const score of scores) expect(score).toBeGreaterThanOrEqual(BLOCK_BELOW)
      }),
      // A fixed seed: the same replies on every run (no test that passes by luck).
      { numRuns: 40, seed: 24 },
    )
    // Both outcomes were reached: the property was not vacuous.
    expect(seen.delivered).toBeGreaterThan(0)
    expect(seen.withheld).toBeGreaterThan(0)
  }, 60_000)

  it('ragGuardRunnable (both checks): a delivered answer has every check scored within its thresholds', async () => {
    const seen = { delivered: 0, withheld: 0 }
    await fc.assert(
      fc.asyncProperty(judgeReplies, async (reply) => {
        const judge = await scriptModel(reply)
        const model = await scriptModel({ content: ANSWER })
        const guarded = ragGuardRunnable(retrievalChain(model), {
          judge: { chatModel: judgeModel(judge) },
          checks: ['sufficiency', 'groundedness'],
          blockBelow: BLOCK_BELOW,
          groundednessBlockBelow: BLOCK_BELOW,
        })
        const output = (await guarded.invoke({ input: QUESTION })) as {
          answer: string
          ragGuard: RagGuardVerdict
        }
        if (output.answer !== ANSWER) return void seen.withheld++
        seen.delivered++
        expect(scoredWithin(output.ragGuard), JSON.stringify(output.ragGuard)).toBe(true)
      }),
      // A fixed seed: the same replies on every run (no test that passes by luck).
      { numRuns: 30, seed: 24 },
    )
    expect(seen.delivered).toBeGreaterThan(0)
    expect(seen.withheld).toBeGreaterThan(0)
  }, 60_000)

  it('ragGuardMiddleware (both checks): a delivered answer has every check scored within its thresholds', async () => {
    const seen = { delivered: 0, withheld: 0 }
    await fc.assert(
      fc.asyncProperty(judgeReplies, async (reply) => {
        const judge = await scriptModel(reply)
        const model = await scriptModel({ steps: [callsTool(), answers()] })
        const agent = createAgent({
          model: answerModel(model),
          tools: [searchDocs],
          middleware: [
            ragGuardMiddleware({
              judge: { chatModel: judgeModel(judge) },
              checks: ['sufficiency', 'groundedness'],
              blockBelow: BLOCK_BELOW,
              groundednessBlockBelow: BLOCK_BELOW,
            }),
          ],
        })
        const result = (await agent.invoke({
          messages: [{ role: 'user', content: QUESTION }],
        })) as { messages: Array<{ content: unknown }>; ragGuard: RagGuardVerdict }
        if (result.messages.at(-1)?.content !== ANSWER) return void seen.withheld++
        seen.delivered++
        expect(scoredWithin(result.ragGuard), JSON.stringify(result.ragGuard)).toBe(true)
      }),
      // A fixed seed: the same replies on every run (no test that passes by luck).
      { numRuns: 15, seed: 24 },
    )
    expect(seen.withheld).toBeGreaterThan(0)
  }, 60_000)
})
