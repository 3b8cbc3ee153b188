/**
 * `ragGuardRunnable` around real LCEL chains whose model is `ChatOpenAI` against the stub server:
 * a retrieval chain (`{ input }` → `{ input, context, answer }`) and a chain given its documents
 * (`{ input, context }` → the answer's text). In workerd, where a Worker would run it.
 */
import { Document } from '@langchain/core/documents'
import { RunnableLambda } from '@langchain/core/runnables'
import { RunCollectorCallbackHandler } from '@langchain/core/tracers/run_collector'
import { describe, expect, it } from 'vitest'
import {
  JUDGE_RUN_NAME,
  RagGuardBlockedError,
  ragGuardRunnable,
  type RagGuardRunnableOptions,
  type RagGuardVerdict,
} from '../../src/langchain'
import { scriptModel, type ScriptedModel } from '../helpers'
import type { StubScript } from '../stub/openai-stub'
import {
  ANSWER,
  answerModel,
  DOCUMENTS,
  FALLBACK,
  judgeModel,
  judgeSays,
  promptOf,
  QUESTION,
  retrievalChain,
  stuffChain,
} from './helpers'

interface ChainOutput {
  input: string
  context: Document[]
  answer: string
  ragGuard?: RagGuardVerdict
}

/** The retrieval chain behind the guard; its model answers `content` after `delayMs`. */
async function guardedChain(
  judgeScript: StubScript,
  options: Partial<RagGuardRunnableOptions> = {},
  generation: StubScript = { content: ANSWER },
  documents = DOCUMENTS,
) {
  const model = await scriptModel(generation)
  const judge = await scriptModel(judgeScript)
  const chain = retrievalChain(model, documents)
  const guarded = ragGuardRunnable(chain, {
    judge: { chatModel: judgeModel(judge) },
    ...options,
  })
  return { chain, guarded, model, judge }
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const chunks: T[] = []
  for await (const chunk of stream) chunks.push(chunk)
  return chunks
}

const answerText = (chunks: unknown[]) =>
  chunks.map((chunk) => (chunk as { answer?: string }).answer ?? '').join('')

describe('ragGuardRunnable: invoke and batch', () => {
  it('a passed answer is the chain’s output, with the verdict at ragGuard', async () => {
    const { guarded } = await guardedChain(judgeSays(0.95))
    const output = (await guarded.invoke({ input: QUESTION })) as ChainOutput
    expect(output.answer).toBe(ANSWER)
    expect(output.input).toBe(QUESTION)
    expect(output.context.map((document) => document.pageContent)).toEqual(DOCUMENTS)
    expect(output.ragGuard).toMatchObject({
      verdict: 'pass',
      applied: false,
      check: 'sufficiency',
      score: expect.closeTo(0.95, 6),
      documents: 2,
    })
  })

  it('a flagged answer is the chain’s own', async () => {
    const { guarded } = await guardedChain(judgeSays(0.3))
    const output = (await guarded.invoke({ input: QUESTION })) as ChainOutput
    expect(output.answer).toBe(ANSWER)
    expect(output.ragGuard).toMatchObject({ verdict: 'flag', applied: false })
  })

  it('a blocked answer is replaced by the fallback; the input and the documents are kept', async () => {
    const { guarded } = await guardedChain(judgeSays(0.02))
    const output = (await guarded.invoke({ input: QUESTION })) as ChainOutput
    expect(output.answer).toBe(FALLBACK)
    expect(output.input).toBe(QUESTION)
    expect(output.context).toHaveLength(2)
    expect(output.ragGuard).toMatchObject({ verdict: 'block', applied: true })
  })

  it('the judge is asked about the input’s question and the output’s documents', async () => {
    const { guarded, judge } = await guardedChain(judgeSays(0.95))
    await guarded.invoke({ input: QUESTION })
    const prompt = promptOf((await judge.requests())[0]!)
    expect(prompt).toContain(QUESTION)
    for (const document of DOCUMENTS) expect(prompt).toContain(document)
  })

  it('a chain that retrieved nothing is no documents: score 0, blocked, no judge call', async () => {
    const { guarded, judge } = await guardedChain(judgeSays(0.95), {}, undefined, [])
    const output = (await guarded.invoke({ input: QUESTION })) as ChainOutput
    expect(await judge.requests()).toHaveLength(0)
    expect(output.answer).toBe(FALLBACK)
    expect(output.ragGuard).toMatchObject({ verdict: 'block', score: 0, reason: 'no-documents' })
  })

  it('an input with two questions is unjudgeable (ambiguous-question): blocked, no judge call', async () => {
    const { judge } = await guardedChain(judgeSays(0.95))
    const model = await scriptModel({ content: ANSWER })
    const chain = RunnableLambda.from(async (input: { input: string; question: string }) => ({
      ...input,
      context: DOCUMENTS,
      answer: await answerModel(model)
        .invoke(input.input)
        .then((message) => message.text),
    }))
    const guarded = ragGuardRunnable(chain, { judge: { chatModel: judgeModel(judge) } })
    const output = await guarded.invoke({ input: QUESTION, question: 'Something else?' })
    expect(await judge.requests()).toHaveLength(0)
    expect(output.answer).toBe(FALLBACK)
    expect(output.ragGuard).toMatchObject({ verdict: 'block', reason: 'ambiguous-question' })
  })

  it('batch judges each input: a blocked one is replaced, the others are kept', async () => {
    const { guarded } = await guardedChain({
      rules: [{ contains: 'manufactures', step: judgeSays(0.02) }],
      otherwise: judgeSays(0.95),
    })
    const outputs = (await guarded.batch([
      { input: QUESTION },
      { input: 'Which company manufactures the bikes?' },
    ])) as ChainOutput[]
    expect(outputs.map((output) => output.answer)).toEqual([ANSWER, FALLBACK])
    expect(outputs.map((output) => output.ragGuard?.verdict)).toEqual(['pass', 'block'])
  })

  it('shadow mode records the verdict and changes nothing', async () => {
    const { guarded } = await guardedChain(judgeSays(0.02), { mode: 'shadow' })
    const output = (await guarded.invoke({ input: QUESTION })) as ChainOutput
    expect(output.answer).toBe(ANSWER)
    expect(output.ragGuard).toMatchObject({ verdict: 'block', mode: 'shadow', applied: false })
  })

  it('a judge that fails follows onError, with its reason', async () => {
    const { guarded } = await guardedChain({ status: 500 }, { onError: 'block' })
    const output = (await guarded.invoke({ input: QUESTION })) as ChainOutput
    expect(output.answer).toBe(FALLBACK)
    expect(output.ragGuard).toMatchObject({ verdict: 'block', reason: 'judge-http-error' })
  })

  it('a judge that times out follows onError (flag by default) with judge-timeout', async () => {
    const judge = await scriptModel({ hang: true })
    const model = await scriptModel({ content: ANSWER })
    const timed = ragGuardRunnable(retrievalChain(model), {
      judge: { baseURL: judge.baseURL, apiKey: 'sk-test', timeoutMs: 50, maxRetries: 0 },
    })
    const output = (await timed.invoke({ input: QUESTION })) as ChainOutput
    expect(output.answer).toBe(ANSWER)
    expect(output.ragGuard).toMatchObject({ verdict: 'flag', reason: 'judge-timeout' })
  })

  it('an answer the "answer" pointer does not find cannot be replaced: the block throws', async () => {
    const { guarded } = await guardedChain(judgeSays(0.02), { answer: '/reply' })
    const error = await guarded.invoke({ input: QUESTION }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(RagGuardBlockedError)
    expect((error as RagGuardBlockedError).verdict).toMatchObject({ verdict: 'block' })
  })

  it('the judge call is a child run of the guarded run in the callbacks', async () => {
    const { guarded } = await guardedChain(judgeSays(0.95))
    const collector = new RunCollectorCallbackHandler()
    await guarded.invoke({ input: QUESTION }, { callbacks: [collector] })
    const [root] = collector.tracedRuns
    expect(root?.name).toBe('RagGuardRunnable')
    const children = (root!.child_runs ?? []).map((run) => [run.name, run.run_type])
    expect(children).toContainEqual([JUDGE_RUN_NAME, 'llm'])
    expect(children.length).toBe(2)
    expect(root!.outputs?.['ragGuard']).toMatchObject({ verdict: 'pass' })
  })
})

describe('ragGuardRunnable: documents in the input', () => {
  it('the judge runs while the chain generates: the chain can wait for the judge’s request', async () => {
    const judge = await scriptModel(judgeSays(0.95))
    const model = await scriptModel({ content: ANSWER })
    // This chain answers only once the judge has been asked: judging after it would never end.
    const waitsForJudge = RunnableLambda.from(
      async (input: { input: string; context: string[] }) => {
        while ((await judge.requests()).length === 0) await new Promise((r) => setTimeout(r, 5))
        return stuffChain(model).invoke(input)
      },
    )
    const guarded = ragGuardRunnable(waitsForJudge, {
      judge: { chatModel: judgeModel(judge) },
      context: { in: 'input', pointer: '/context' },
    })
    const output = await guarded.invoke({ input: QUESTION, context: DOCUMENTS })
    expect(output).toBe(ANSWER)
  })

  it('a chain that answers with text gets the fallback text on block', async () => {
    const judge = await scriptModel(judgeSays(0.02))
    const model = await scriptModel({ content: ANSWER })
    const guarded = ragGuardRunnable(stuffChain(model), {
      judge: { chatModel: judgeModel(judge) },
      context: { in: 'input', pointer: '/context' },
    })
    expect(await guarded.invoke({ input: QUESTION, context: DOCUMENTS })).toBe(FALLBACK)
  })

  it('onVerdict receives the verdict of a chain whose text output has no room for it', async () => {
    const seen: RagGuardVerdict[] = []
    const judge = await scriptModel(judgeSays(0.3))
    const model = await scriptModel({ content: ANSWER })
    const guarded = ragGuardRunnable(stuffChain(model), {
      judge: { chatModel: judgeModel(judge) },
      context: { in: 'input', pointer: '/context' },
      onVerdict: (verdict) => seen.push(verdict),
    })
    expect(await guarded.invoke({ input: QUESTION, context: DOCUMENTS })).toBe(ANSWER)
    expect(seen).toMatchObject([{ verdict: 'flag', applied: false }])
  })

  it('the "question" pointer reads the question from the input', async () => {
    const judge = await scriptModel(judgeSays(0.95))
    const model = await scriptModel({ content: ANSWER })
    const chain = RunnableLambda.from((input: { ask: { text: string }; context: string[] }) =>
      stuffChain(model).invoke({ input: input.ask.text, context: input.context }),
    )
    const guarded = ragGuardRunnable(chain, {
      judge: { chatModel: judgeModel(judge) },
      question: '/ask/text',
      context: { in: 'input', pointer: '/context' },
    })
    await guarded.invoke({
      ask: { text: 'How much is the annual membership?' },
      context: DOCUMENTS,
    })
    expect(promptOf((await judge.requests())[0]!)).toContain('How much is the annual membership?')
  })
})

describe('ragGuardRunnable: stream', () => {
  it('hold, pass: the chain’s own chunks, then one chunk with the verdict', async () => {
    const { chain, guarded } = await guardedChain(judgeSays(0.95))
    const own = await collect(await chain.stream({ input: QUESTION }))
    const chunks = await collect(await guarded.stream({ input: QUESTION }))
    expect(chunks.slice(0, -1)).toEqual(own)
    expect(chunks.at(-1)).toEqual({ ragGuard: expect.objectContaining({ verdict: 'pass' }) })
    expect(answerText(chunks)).toBe(ANSWER)
  })

  it('hold, block: no chunk of the answer goes out; the input, the documents, then the fallback', async () => {
    const { guarded } = await guardedChain(judgeSays(0.02))
    const chunks = await collect(await guarded.stream({ input: QUESTION }))
    expect(answerText(chunks)).toBe(FALLBACK)
    expect(chunks.filter((chunk) => 'answer' in chunk)).toEqual([{ answer: FALLBACK }])
    expect(chunks).toContainEqual({ input: QUESTION })
    expect(chunks.find((chunk) => 'context' in chunk)?.context).toHaveLength(2)
    expect(chunks.at(-1)).toEqual({
      ragGuard: expect.objectContaining({ verdict: 'block', applied: true }),
    })
  })

  it('hold, block: the chain is stopped, even a generation that would never end', async () => {
    const { guarded, model } = await guardedChain(judgeSays(0.02), {}, { hang: true })
    const chunks = await collect(await guarded.stream({ input: QUESTION }))
    expect(answerText(chunks)).toBe(FALLBACK)
    // The generation was given up, not left running: its request abandoned, or (the block came
    // first, on a busy machine) never sent.
    await expect
      .poll(async () => {
        const requests = await model.requests()
        return requests.length <= 1 && requests.every((request) => request.abandoned)
      })
      .toBe(true)
  })

  it('hold, documents in the input: a block ends the stream before the generation answers', async () => {
    const judge = await scriptModel(judgeSays(0.02))
    const model = await scriptModel({ hang: true })
    const guarded = ragGuardRunnable(stuffChain(model), {
      judge: { chatModel: judgeModel(judge) },
      context: { in: 'input', pointer: '/context' },
      answer: '',
    })
    const chunks = await collect(await guarded.stream({ input: QUESTION, context: DOCUMENTS }))
    expect(chunks).toEqual([FALLBACK])
    await expect.poll(async () => (await model.requests())[0]?.abandoned).toBe(true)
  })

  it('hold: a stream that ends without documents is no documents, blocked', async () => {
    const { guarded, judge } = await guardedChain(judgeSays(0.95), {}, undefined, [])
    const chunks = await collect(await guarded.stream({ input: QUESTION }))
    expect(await judge.requests()).toHaveLength(0)
    expect(answerText(chunks)).toBe(FALLBACK)
    expect(chunks.at(-1)).toEqual({
      ragGuard: expect.objectContaining({ verdict: 'block', reason: 'no-documents' }),
    })
  })

  it('annotate: every chunk as the chain sends it, then the verdict, even a block', async () => {
    const { chain, guarded } = await guardedChain(judgeSays(0.02), { streamMode: 'annotate' })
    const own = await collect(await chain.stream({ input: QUESTION }))
    const chunks = await collect(await guarded.stream({ input: QUESTION }))
    expect(chunks.slice(0, -1)).toEqual(own)
    expect(answerText(chunks)).toBe(ANSWER)
    expect(chunks.at(-1)).toEqual({
      ragGuard: expect.objectContaining({ verdict: 'block', applied: false }),
    })
  })

  it('shadow: the chain’s chunks untouched, the verdict to onVerdict only', async () => {
    const seen: RagGuardVerdict[] = []
    const { chain, guarded } = await guardedChain(judgeSays(0.02), {
      mode: 'shadow',
      onVerdict: (verdict) => seen.push(verdict),
    })
    const own = await collect(await chain.stream({ input: QUESTION }))
    const chunks = await collect(await guarded.stream({ input: QUESTION }))
    expect(chunks).toEqual(own)
    await expect.poll(() => seen.length).toBe(1)
    expect(seen[0]).toMatchObject({ verdict: 'block', mode: 'shadow', applied: false })
  })

  it('shadow: a judge slower than the chain still gives its verdict after the stream ends', async () => {
    const seen: RagGuardVerdict[] = []
    const { guarded } = await guardedChain(judgeSays(0.02, { delayMs: 200 }), {
      mode: 'shadow',
      onVerdict: (verdict) => seen.push(verdict),
    })
    const chunks = await collect(await guarded.stream({ input: QUESTION }))
    expect(answerText(chunks)).toBe(ANSWER)
    await expect.poll(() => seen.length, { timeout: 5_000 }).toBe(1)
    expect(seen[0]).toMatchObject({ verdict: 'block', score: expect.closeTo(0.02, 6) })
  })

  it('a text stream in hold mode is the chain’s text on pass, with no verdict chunk', async () => {
    const judge = await scriptModel(judgeSays(0.95))
    const model = await scriptModel({ content: ANSWER })
    const guarded = ragGuardRunnable(stuffChain(model), {
      judge: { chatModel: judgeModel(judge) },
      context: { in: 'input', pointer: '/context' },
    })
    const chunks = await collect(await guarded.stream({ input: QUESTION, context: DOCUMENTS }))
    expect(chunks.join('')).toBe(ANSWER)
    expect(chunks.every((chunk) => typeof chunk === 'string')).toBe(true)
  })
})
