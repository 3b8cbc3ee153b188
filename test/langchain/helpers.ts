/**
 * What the LangChain tests build from: real `ChatOpenAI` models pointed at the stub server (one
 * scenario for the judge, one for the agent's or chain's own model), a retriever tool over a few
 * documents, and a retrieval chain of the shape LangChain's retrieval chains return.
 */
import { Document } from '@langchain/core/documents'
import { StringOutputParser } from '@langchain/core/output_parsers'
import { ChatPromptTemplate } from '@langchain/core/prompts'
import { RunnableLambda, RunnablePassthrough, type Runnable } from '@langchain/core/runnables'
import { ChatOpenAI } from '@langchain/openai'
import { tool } from 'langchain'
import * as z from 'zod'
import type { VerdictCache } from '../../src'
import type { JudgeScore } from '../../src/judge/judge'
import type { RecordedRequest, StubStep } from '../stub/openai-stub'
import type { ScriptedModel } from '../helpers'

export { FALLBACK, judgeSays } from '../guard-helpers'

export const QUESTION = 'What does a day pass cost?'
export const DOCUMENTS = [
  'A day pass costs $12 and includes unlimited rides of up to 45 minutes each.',
  'An annual membership costs $99 per year.',
]
export const ANSWER = 'A day pass costs $12.'

/** A chat model as the judge needs it: logprobs, one token, temperature 0. */
export function judgeModel(judge: ScriptedModel): ChatOpenAI {
  return new ChatOpenAI({
    model: 'judge-model',
    apiKey: 'sk-test',
    configuration: { baseURL: judge.baseURL },
    logprobs: true,
    topLogprobs: 20,
    maxTokens: 1,
    temperature: 0,
    maxRetries: 0,
  })
}

/** The agent's (or the chain's) own model. */
export function answerModel(model: ScriptedModel): ChatOpenAI {
  return new ChatOpenAI({
    model: 'answer-model',
    apiKey: 'sk-test',
    configuration: { baseURL: model.baseURL },
    temperature: 0,
    maxRetries: 0,
  })
}

/** A retriever tool: its text is the documents, its artifact the documents themselves. */
export function retriever(documents: readonly string[], name = 'search_docs') {
  return tool(
    async () => [
      documents.join('\n\n'),
      documents.map((text) => new Document({ pageContent: text })),
    ],
    {
      name,
      description: 'Searches the bike-share documents.',
      schema: z.object({ query: z.string() }),
      responseFormat: 'content_and_artifact',
    },
  )
}

export const searchDocs = retriever(DOCUMENTS)

/** A tool that retrieves nothing: its result is no document. */
export const clock = tool(async () => 'It is 10:00.', {
  name: 'clock',
  description: 'Tells the time.',
  schema: z.object({}),
})

/** A completion id of its own: an agent keeps its messages apart by their ids. */
const completionId = () => `chatcmpl-${crypto.randomUUID()}`

/** The model's turn that asks for a tool. */
export const callsTool = (name = 'search_docs', args: unknown = { query: QUESTION }): StubStep => ({
  id: completionId(),
  toolCalls: [{ name, arguments: args }],
})

/** The model's turn that answers. */
export const answers = (content = ANSWER): StubStep => ({ id: completionId(), content })

/** The messages a chat-completions request carried, as text. */
export const promptOf = (request: RecordedRequest): string =>
  JSON.stringify((request.body as { messages: unknown[] }).messages)

/** Requests of a scripted model that generated text (not a judge call). */
export const countRequests = async (model: ScriptedModel) => (await model.requests()).length

/**
 * A retrieval chain: `{ input }` → `{ input, context: Document[], answer }`, as LangChain's
 * retrieval chains (and the `langserve` format) have it.
 */
export function retrievalChain(model: ScriptedModel, documents = DOCUMENTS) {
  const retriever = RunnableLambda.from(async (_question: string) =>
    documents.map((text) => new Document({ pageContent: text })),
  )
  const prompt = ChatPromptTemplate.fromMessages([
    ['system', 'Answer from these documents only:\n\n{documents}'],
    ['human', '{input}'],
  ])
  const answer = RunnableLambda.from((input: { input: string; context: Document[] }) => ({
    input: input.input,
    documents: input.context.map((document) => document.pageContent).join('\n\n'),
  }))
    .pipe(prompt)
    .pipe(answerModel(model))
    .pipe(new StringOutputParser())
  return RunnablePassthrough.assign({
    context: (input: { input: string }) => retriever.invoke(input.input),
  }).assign({ answer }) as unknown as Runnable<
    { input: string },
    { input: string; context: Document[]; answer: string }
  >
}

/** A verdict cache in memory; like the real ones, it keeps a score without its call's latency. */
export function memoryCache(): VerdictCache & { entries: Map<string, JudgeScore> } {
  const entries = new Map<string, JudgeScore>()
  return {
    entries,
    get: async (key) => {
      const score = entries.get(key)
      return score && { ...score, latencyMs: 0 }
    },
    put: async (key, score) => void entries.set(key, score),
  }
}

/** A chain given its documents: `{ input, context }` → the answer's text. */
export function stuffChain(
  model: ScriptedModel,
): Runnable<{ input: string; context: string[] }, string> {
  const prompt = ChatPromptTemplate.fromMessages([
    ['system', 'Answer from these documents only:\n\n{documents}'],
    ['human', '{input}'],
  ])
  return RunnableLambda.from((input: { input: string; context: string[] }) => ({
    input: input.input,
    documents: input.context.join('\n\n'),
  }))
    .pipe(prompt)
    .pipe(answerModel(model))
    .pipe(new StringOutputParser())
}
