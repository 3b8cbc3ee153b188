/**
 * Issue 24, finding 2, in the LangChain forms: the judge's reply to the data (another token, a
 * refusal, a content filter, no logprobs, too little True/False mass) is unjudgeable, and
 * `onUnjudgeable` (block by default in enforce mode) decides it, in the agent middleware and the
 * guarded runnable alike; `onError` keeps deciding the infrastructure's failures.
 */
import { createAgent } from 'langchain'
import { describe, expect, it } from 'vitest'
import { ragGuardMiddleware, ragGuardRunnable, type RagGuardVerdict } from '../../src/langchain'
import { scriptModel } from '../helpers'
import { DATA_REPLIES } from '../judge-replies'
import type { StubStep } from '../stub/openai-stub'
import {
  ANSWER,
  answerModel,
  answers,
  callsTool,
  FALLBACK,
  judgeModel,
  QUESTION,
  retrievalChain,
  searchDocs,
} from './helpers'

async function runnable(reply: StubStep, options: object = {}) {
  const judge = await scriptModel(reply)
  const model = await scriptModel({ content: ANSWER })
  return ragGuardRunnable(retrievalChain(model), {
    judge: { chatModel: judgeModel(judge) },
    ...options,
  })
}

async function agentRun(reply: StubStep, options: object = {}) {
  const judge = await scriptModel(reply)
  const model = await scriptModel({ steps: [callsTool(), answers()] })
  const agent = createAgent({
    model: answerModel(model),
    tools: [searchDocs],
    middleware: [ragGuardMiddleware({ judge: { chatModel: judgeModel(judge) }, ...options })],
  })
  const result = (await agent.invoke({ messages: [{ role: 'user', content: QUESTION }] })) as {
    messages: Array<{ content: unknown }>
    ragGuard?: RagGuardVerdict
  }
  return { result, model }
}

describe('finding 2: ragGuardRunnable', () => {
  it.each(DATA_REPLIES)('%s blocks by default', async (_, reply, reason) => {
    const guarded = await runnable(reply)
    const output = (await guarded.invoke({ input: QUESTION })) as {
      answer: string
      ragGuard: RagGuardVerdict
    }
    expect(output.ragGuard).toMatchObject({ verdict: 'block', applied: true, reason })
    expect(output.answer).toBe(FALLBACK)
  })

  it('onUnjudgeable: "flag" lets it through, flagged; onError: "pass" does not', async () => {
    const flagged = await runnable(DATA_REPLIES[0]![1], { onUnjudgeable: 'flag' })
    const output = (await flagged.invoke({ input: QUESTION })) as {
      answer: string
      ragGuard: RagGuardVerdict
    }
    expect(output.ragGuard).toMatchObject({ verdict: 'flag', reason: 'unexpected-token' })
    expect(output.answer).toBe(ANSWER)
    const lenient = await runnable(DATA_REPLIES[0]![1], { onError: 'pass' })
    const blocked = (await lenient.invoke({ input: QUESTION })) as { answer: string }
    expect(blocked.answer).toBe(FALLBACK)
  })

  it('a 500 of the judge API follows onError (flag by default)', async () => {
    const guarded = await runnable({ status: 500, json: { error: { message: 'down' } } })
    const output = (await guarded.invoke({ input: QUESTION })) as {
      answer: string
      ragGuard: RagGuardVerdict
    }
    expect(output.ragGuard).toMatchObject({ verdict: 'flag', reason: 'judge-http-error' })
    expect(output.answer).toBe(ANSWER)
  })
})

describe('finding 2: ragGuardMiddleware', () => {
  it.each(DATA_REPLIES)(
    '%s ends the run with the fallback by default, before the answer is written',
    async (_, reply, reason) => {
      const { result, model } = await agentRun(reply)
      expect(result.ragGuard).toMatchObject({ verdict: 'block', applied: true, reason })
      expect(result.messages.at(-1)?.content).toBe(FALLBACK)
      expect(await model.requests()).toHaveLength(1)
    },
  )

  it('a 500 of the judge API follows onError (flag by default): the answer is written', async () => {
    const { result } = await agentRun({ status: 500, json: { error: { message: 'down' } } })
    expect(result.ragGuard).toMatchObject({ verdict: 'flag', reason: 'judge-http-error' })
    expect(result.messages.at(-1)?.content).toBe(ANSWER)
  })
})
