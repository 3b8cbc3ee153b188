/**
 * `ragGuardMiddleware` in a real `createAgent`, with `ChatOpenAI` for the agent and for the judge,
 * both talking to the stub server (one scenario each, so the agent's own model calls can be
 * counted). In workerd, where a Worker would run it.
 */
import { HumanMessage, type AIMessage } from '@langchain/core/messages'
import type { ClientTool } from '@langchain/core/tools'
import { createAgent } from 'langchain'
import { describe, expect, it } from 'vitest'
import {
  RAG_GUARD_KEY,
  RagGuardBlockedError,
  ragGuardMiddleware,
  type RagGuardMiddlewareOptions,
  type RagGuardVerdict,
} from '../../src/langchain'
import { PROMPT_VERSION } from '../../src'
import { scriptModel, type ScriptedModel } from '../helpers'
import type { StubStep } from '../stub/openai-stub'
import {
  ANSWER,
  answerModel,
  answers,
  callsTool,
  clock,
  DOCUMENTS,
  FALLBACK,
  judgeModel,
  judgeSays,
  memoryCache,
  promptOf,
  QUESTION,
  retriever,
  searchDocs,
} from './helpers'

interface AgentSetup {
  /** The agent's own model: each request to it is a model call of the agent. */
  model: ScriptedModel
  judge: ScriptedModel
  run(question?: string | HumanMessage): Promise<{
    messages: AIMessage[]
    ragGuard?: RagGuardVerdict & { turn: string }
  }>
}

/** An agent whose model first calls the retriever, then answers; guarded by the middleware. */
async function guardedAgent(
  judgeStep: StubStep | { steps: StubStep[] },
  options: Partial<RagGuardMiddlewareOptions> = {},
  modelSteps: StubStep[] = [callsTool(), answers()],
  tools: ClientTool[] = [searchDocs],
): Promise<AgentSetup> {
  const model = await scriptModel({ steps: modelSteps })
  const judge = await scriptModel(judgeStep)
  const agent = createAgent({
    model: answerModel(model),
    tools,
    middleware: [ragGuardMiddleware({ judge: { chatModel: judgeModel(judge) }, ...options })],
  })
  return {
    model,
    judge,
    run: (question = QUESTION) =>
      agent.invoke({
        messages: [typeof question === 'string' ? { role: 'user', content: question } : question],
      }) as never,
  }
}

const last = (messages: AIMessage[]) => messages[messages.length - 1]!

describe('ragGuardMiddleware: verdicts', () => {
  it('a blocked question ends the run before the answer is written: the model gets no answer-generation request', async () => {
    const setup = await guardedAgent(judgeSays(0.02))
    const result = await setup.run()
    // One model call only: the one that chose the retriever. The answer was never asked for.
    expect(await setup.model.requests()).toHaveLength(1)
    expect(last(result.messages).content).toBe(FALLBACK)
    expect(result.ragGuard).toMatchObject({
      verdict: 'block',
      applied: true,
      mode: 'enforce',
      check: 'sufficiency',
      score: expect.closeTo(0.02, 6),
      documents: 2,
      promptVersion: PROMPT_VERSION,
    })
  })

  it('a blocked run’s final message carries the verdict in its metadata', async () => {
    const setup = await guardedAgent(judgeSays(0.02))
    const result = await setup.run()
    const verdict = last(result.messages).response_metadata[RAG_GUARD_KEY]
    expect(verdict).toMatchObject({ verdict: 'block', applied: true })
    expect(verdict).toEqual(
      Object.fromEntries(
        // What only the state keeps: the turn, and what the guard's seal covers (issue 24).
        Object.entries(result.ragGuard!).filter(
          ([key]) => !['turn', 'through', 'digest', 'answerDigest', 'seal'].includes(key),
        ),
      ),
    )
  })

  it('a flagged answer is the model’s own, with the verdict in the state and in the message metadata', async () => {
    const setup = await guardedAgent(judgeSays(0.3))
    const result = await setup.run()
    expect(await setup.model.requests()).toHaveLength(2)
    expect(last(result.messages).content).toBe(ANSWER)
    expect(result.ragGuard).toMatchObject({ verdict: 'flag', applied: false })
    expect(last(result.messages).response_metadata[RAG_GUARD_KEY]).toMatchObject({
      verdict: 'flag',
      score: expect.closeTo(0.3, 6),
      latencyMs: expect.any(Number),
      model: 'judge-model',
    })
  })

  it('a passed answer is the model’s own, its id and usage kept, with the verdict added', async () => {
    const setup = await guardedAgent(judgeSays(0.95), {}, [
      callsTool(),
      { ...answers(), id: 'chatcmpl-the-answer' },
    ])
    const result = await setup.run()
    const answer = last(result.messages)
    expect(answer.content).toBe(ANSWER)
    expect(answer.id).toBe('chatcmpl-the-answer')
    expect(answer.usage_metadata?.input_tokens).toBe(42)
    expect(answer.response_metadata[RAG_GUARD_KEY]).toMatchObject({ verdict: 'pass' })
    expect(result.ragGuard).toMatchObject({ verdict: 'pass', applied: false })
  })

  it('the judge is asked about the user’s question and each retrieved document', async () => {
    const setup = await guardedAgent(judgeSays(0.95))
    await setup.run()
    const [request] = await setup.judge.requests()
    const prompt = promptOf(request!)
    expect(prompt).toContain(QUESTION)
    for (const document of DOCUMENTS) expect(prompt).toContain(document)
    expect(prompt.match(/<<<DOCUMENT \d+ /g)).toHaveLength(2)
  })

  it('only the tools named in "tools" count as retrieval', async () => {
    const setup = await guardedAgent(
      judgeSays(0.95),
      { tools: ['search_docs'] },
      [callsTool('clock', {}), callsTool(), answers()],
      [searchDocs, clock],
    )
    const result = await setup.run()
    expect(result.ragGuard).toMatchObject({ verdict: 'pass', documents: 2 })
    const requests = await setup.judge.requests()
    expect(requests).toHaveLength(1)
    expect(promptOf(requests[0]!)).not.toContain('It is 10:00.')
  })

  it('a tool that is not retrieval leaves the model free to call it before any judging', async () => {
    const setup = await guardedAgent(
      judgeSays(0.95),
      { tools: ['search_docs'] },
      [callsTool('clock', {}), answers('It is ten.')],
      [searchDocs, clock],
    )
    const result = await setup.run()
    // Nothing was retrieved: the answer has no documents behind it (score 0, blocked), unjudged.
    expect(await setup.judge.requests()).toHaveLength(0)
    expect(await setup.model.requests()).toHaveLength(2)
    expect(result.ragGuard).toMatchObject({ verdict: 'block', reason: 'no-documents', score: 0 })
  })

  it('new retrieval after a judged one is judged again, with everything retrieved in the turn', async () => {
    const setup = await guardedAgent({ steps: [judgeSays(0.3), judgeSays(0.9)] }, {}, [
      callsTool(),
      callsTool('search_docs', { query: 'more' }),
      answers(),
    ])
    const result = await setup.run()
    const requests = await setup.judge.requests()
    expect(requests).toHaveLength(2)
    expect(promptOf(requests[1]!).match(/<<<DOCUMENT \d+ /g)).toHaveLength(4)
    expect(result.ragGuard).toMatchObject({ verdict: 'pass', documents: 4 })
  })

  it('an answer written with nothing retrieved is judged as no documents: score 0, replaced, no judge call', async () => {
    const setup = await guardedAgent(judgeSays(0.95), {}, [answers('Probably $10.')])
    const result = await setup.run()
    expect(await setup.judge.requests()).toHaveLength(0)
    expect(last(result.messages).content).toBe(FALLBACK)
    expect(result.ragGuard).toMatchObject({
      verdict: 'block',
      applied: true,
      score: 0,
      reason: 'no-documents',
    })
    expect(last(result.messages).response_metadata[RAG_GUARD_KEY]).toMatchObject({
      reason: 'no-documents',
    })
  })

  it('noDocumentsScore decides an answer without retrieval through the thresholds', async () => {
    const setup = await guardedAgent(judgeSays(0.95), { noDocumentsScore: 0.3 }, [
      { content: 'Probably $10.' },
    ])
    const result = await setup.run()
    expect(last(result.messages).content).toBe('Probably $10.')
    expect(result.ragGuard).toMatchObject({ verdict: 'flag', score: 0.3, reason: 'no-documents' })
  })

  it('a retrieval that found nothing is no documents: blocked before the answer, no judge call', async () => {
    const setup = await guardedAgent(judgeSays(0.95), {}, undefined, [retriever([])])
    const result = await setup.run()
    expect(await setup.judge.requests()).toHaveLength(0)
    expect(await setup.model.requests()).toHaveLength(1)
    expect(result.ragGuard).toMatchObject({ verdict: 'block', reason: 'no-documents' })
  })

  it('a question the guard cannot read (an image part) follows onUnjudgeable: blocked before the answer', async () => {
    const setup = await guardedAgent(judgeSays(0.95))
    const result = await setup.run(
      new HumanMessage({
        content: [
          { type: 'text', text: 'What does this pass cost?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
        ],
      }),
    )
    expect(await setup.judge.requests()).toHaveLength(0)
    expect(await setup.model.requests()).toHaveLength(1)
    expect(result.ragGuard).toMatchObject({ verdict: 'block', reason: 'invalid-question' })
  })
})

describe('ragGuardMiddleware: modes and failures', () => {
  it('shadow mode records the verdict and changes nothing', async () => {
    const setup = await guardedAgent(judgeSays(0.02), { mode: 'shadow' })
    const result = await setup.run()
    expect(await setup.model.requests()).toHaveLength(2)
    expect(last(result.messages).content).toBe(ANSWER)
    expect(result.ragGuard).toMatchObject({ verdict: 'block', mode: 'shadow', applied: false })
    expect(last(result.messages).response_metadata[RAG_GUARD_KEY]).toMatchObject({
      verdict: 'block',
      mode: 'shadow',
    })
  })

  it('a judge that fails follows onError (flag by default), with its reason', async () => {
    const setup = await guardedAgent({ status: 500 })
    const result = await setup.run()
    expect(last(result.messages).content).toBe(ANSWER)
    expect(result.ragGuard).toMatchObject({ verdict: 'flag', reason: 'judge-http-error' })
    expect(result.ragGuard?.score).toBeUndefined()
  })

  it('with onError "block", a failed judge ends the run before the answer', async () => {
    const setup = await guardedAgent({ status: 500 }, { onError: 'block' })
    const result = await setup.run()
    expect(await setup.model.requests()).toHaveLength(1)
    expect(last(result.messages).content).toBe(FALLBACK)
    expect(result.ragGuard).toMatchObject({
      verdict: 'block',
      applied: true,
      reason: 'judge-http-error',
    })
  })

  it('a judge that answers without logprobs follows onUnjudgeable with no-logprobs', async () => {
    const setup = await guardedAgent({ noLogprobs: true }, { onUnjudgeable: 'pass' })
    const result = await setup.run()
    expect(last(result.messages).content).toBe(ANSWER)
    expect(result.ragGuard).toMatchObject({ verdict: 'pass', reason: 'no-logprobs' })
  })

  it('exitBehavior "error" throws a RagGuardBlockedError that carries the verdict', async () => {
    const setup = await guardedAgent(judgeSays(0.02), { exitBehavior: 'error' })
    const error = await setup.run().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(RagGuardBlockedError)
    expect((error as RagGuardBlockedError).verdict).toMatchObject({ verdict: 'block' })
    expect(await setup.model.requests()).toHaveLength(1)
  })

  it('the fallback message is the one configured', async () => {
    const setup = await guardedAgent(judgeSays(0.02), { fallbackMessage: 'Ask a person.' })
    const result = await setup.run()
    expect(last(result.messages).content).toBe('Ask a person.')
  })

  it('custom thresholds decide the verdict', async () => {
    const setup = await guardedAgent(judgeSays(0.6), { blockBelow: 0.7, flagBelow: 0.9 })
    const result = await setup.run()
    expect(result.ragGuard).toMatchObject({ verdict: 'block' })
  })

  it('onVerdict receives the verdict the state carries', async () => {
    const seen: RagGuardVerdict[] = []
    const setup = await guardedAgent(judgeSays(0.3), { onVerdict: (verdict) => seen.push(verdict) })
    const result = await setup.run()
    expect(seen).toHaveLength(1)
    expect(result.ragGuard).toMatchObject(seen[0]!)
  })
})

describe('ragGuardMiddleware: judge input and cache', () => {
  it('documents past maxInputChars are cut to fit, and the verdict says truncated', async () => {
    const setup = await guardedAgent(judgeSays(0.95), { maxInputChars: 1_000 }, undefined, [
      retriever(['x'.repeat(5_000)]),
    ])
    const result = await setup.run()
    expect(result.ragGuard).toMatchObject({ verdict: 'pass', truncated: true })
    const [request] = await setup.judge.requests()
    expect(promptOf(request!)).not.toContain('x'.repeat(1_000))
  })

  it('inputOverflow "refuse" makes too much input unjudgeable: blocked, no judge call', async () => {
    const setup = await guardedAgent(judgeSays(0.95), { maxDocuments: 1, inputOverflow: 'refuse' })
    const result = await setup.run()
    expect(await setup.judge.requests()).toHaveLength(0)
    expect(result.ragGuard).toMatchObject({ verdict: 'block', reason: 'judge-input-too-large' })
  })

  it('a verdict cache answers a repeated question without a judge call', async () => {
    const cache = memoryCache()
    const judge = await scriptModel(judgeSays(0.95))
    const model = await scriptModel({
      steps: [callsTool(), answers(), callsTool(), answers()],
    })
    const agent = createAgent({
      model: answerModel(model),
      tools: [searchDocs],
      middleware: [ragGuardMiddleware({ judge: { chatModel: judgeModel(judge) }, cache })],
    })
    const ask = () => agent.invoke({ messages: [{ role: 'user', content: QUESTION }] })
    const first = await ask()
    // The cache is written after the verdict, off the run's path.
    await new Promise((resolve) => setTimeout(resolve, 10))
    const second = await ask()
    expect(await judge.requests()).toHaveLength(1)
    expect(first.ragGuard).toMatchObject({ cache: 'miss', verdict: 'pass' })
    expect(second.ragGuard).toMatchObject({ cache: 'hit', verdict: 'pass', latencyMs: 0 })
  })

  it('judge options build the judge from config, as for ragGuard()', async () => {
    const judge = await scriptModel(judgeSays(0.02))
    const model = await scriptModel({ steps: [callsTool(), answers()] })
    const agent = createAgent({
      model: answerModel(model),
      tools: [searchDocs],
      middleware: [
        ragGuardMiddleware({ judge: { baseURL: judge.baseURL, apiKey: 'sk-test', maxRetries: 0 } }),
      ],
    })
    const result = await agent.invoke({ messages: [{ role: 'user', content: QUESTION }] })
    expect(result.ragGuard).toMatchObject({ verdict: 'block', model: 'gpt-4o-mini' })
    expect(await model.requests()).toHaveLength(1)
  })
})
