/**
 * A small RAG service, the kind RAG Guard stands in front of. It retrieves from the documents in
 * documents.ts and answers with a chat model through LangChain, and it exposes the same chain in
 * the three shapes the guard understands:
 *
 *   POST /ask                   JSON          { question } → { answer, sources: Document[] }
 *   POST /v1/chat/completions   OpenAI chat   citations in choices[0].message.context (as Azure "On Your Data")
 *   POST /rag/invoke            LangServe     { input } → { output: { input, context, answer }, metadata }
 *   POST /rag/stream            LangServe     server-sent events
 *
 * It knows nothing about the guard.
 */
import { Document } from '@langchain/core/documents'
import { StringOutputParser } from '@langchain/core/output_parsers'
import { ChatPromptTemplate } from '@langchain/core/prompts'
import {
  RunnableLambda,
  RunnablePassthrough,
  RunnableSequence,
  type Runnable,
} from '@langchain/core/runnables'
import { ChatOpenAI } from '@langchain/openai'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { retrieve } from './retriever'

interface Env {
  OPENAI_API_KEY?: string
  OPENAI_BASE_URL?: string
  GENERATION_MODEL?: string
}

interface ChainOutput {
  input: string
  context: Document[]
  answer: string
}

const PROMPT = ChatPromptTemplate.fromMessages([
  [
    'system',
    'You answer questions about Harbor City Bike Share. Use only the documents below. If they do not contain the answer, say that you do not know.\n\n{documents}',
  ],
  ['human', '{input}'],
])

const retriever = RunnableLambda.from((question: string) =>
  retrieve(question).map(
    (document) =>
      new Document({
        pageContent: document.text,
        metadata: { id: document.id, title: document.title },
      }),
  ),
)

/** { input, context } → the answer's text, streamable token by token. */
function answerChain(env: Env): Runnable<{ input: string; context: Document[] }, string> {
  const model = new ChatOpenAI({
    model: env.GENERATION_MODEL || 'gpt-4o-mini',
    apiKey: env.OPENAI_API_KEY || 'no-key',
    temperature: 0,
    configuration: env.OPENAI_BASE_URL ? { baseURL: env.OPENAI_BASE_URL } : {},
  })
  return RunnableSequence.from([
    (input: { input: string; context: Document[] }) => ({
      input: input.input,
      documents: input.context.map((document) => document.pageContent).join('\n\n'),
    }),
    PROMPT,
    model,
    new StringOutputParser(),
  ])
}

/** The retrieval chain: { input } → { input, context, answer }, as LangChain's retrieval chains return. */
function ragChain(env: Env): Runnable<{ input: string }, ChainOutput> {
  return RunnablePassthrough.assign({
    context: (input: { input: string }) => retriever.invoke(input.input),
  }).assign({
    answer: answerChain(env),
  }) as unknown as Runnable<{ input: string }, ChainOutput>
}

const pythonStyle = (document: Document) => ({
  page_content: document.pageContent,
  metadata: document.metadata,
  type: 'Document',
})

const app = new Hono<{ Bindings: Env }>()

app.get('/', (c) =>
  c.json({
    service: 'Harbor City Bike Share sample RAG service',
    routes: ['POST /ask', 'POST /v1/chat/completions', 'POST /rag/invoke', 'POST /rag/stream'],
  }),
)

app.post('/ask', async (c) => {
  const { question } = await c.req.json<{ question?: unknown }>()
  if (typeof question !== 'string' || !question.trim())
    return c.json({ error: 'question must be a non-empty string' }, 400)
  const output = await ragChain(c.env).invoke({ input: question })
  return c.json({ answer: output.answer, sources: output.context })
})

app.post('/v1/chat/completions', async (c) => {
  const body = await c.req.json<{
    model?: string
    stream?: boolean
    messages?: Array<{ role: string; content: unknown }>
  }>()
  const question = body.messages?.findLast((message) => message.role === 'user')?.content
  if (typeof question !== 'string')
    return c.json(
      {
        error: {
          message: 'the last user message must have string content',
          type: 'invalid_request_error',
        },
      },
      400,
    )
  const context = await retriever.invoke(question)
  const citations = context.map((document) => ({
    content: document.pageContent,
    title: document.metadata.title,
  }))
  const id = `chatcmpl-sample${crypto.randomUUID().replaceAll('-', '').slice(0, 20)}`
  const created = Math.floor(Date.now() / 1000)
  const model = body.model ?? 'sample-rag'

  if (body.stream) {
    return streamSSE(c, async (stream) => {
      const chunk = (delta: object, finish: string | null = null) =>
        stream.writeSSE({
          data: JSON.stringify({
            id,
            object: 'chat.completion.chunk',
            created,
            model,
            choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
          }),
        })
      await chunk({ role: 'assistant', content: '', context: { citations } })
      for await (const token of await answerChain(c.env).stream({ input: question, context }))
        await chunk({ content: token })
      await chunk({}, 'stop')
      await stream.writeSSE({ data: '[DONE]' })
    })
  }
  const answer = await answerChain(c.env).invoke({ input: question, context })
  return c.json({
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: answer, refusal: null, context: { citations } },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
  })
})

/** LangServe takes `{ input }`, with input a string or `{ input }`. */
async function langServeInput(c: {
  req: { json: <T>() => Promise<T> }
}): Promise<string | undefined> {
  const { input } = await c.req.json<{ input?: unknown }>()
  const question =
    typeof input === 'object' && input !== null ? (input as { input?: unknown }).input : input
  return typeof question === 'string' ? question : undefined
}

app.post('/rag/invoke', async (c) => {
  const question = await langServeInput(c)
  if (!question) return c.json({ detail: 'input must be a string or { input: string }' }, 422)
  const output = await ragChain(c.env).invoke({ input: question })
  return c.json({
    output: {
      input: output.input,
      context: output.context.map(pythonStyle),
      answer: output.answer,
    },
    metadata: { run_id: crypto.randomUUID(), feedback_tokens: [] },
  })
})

app.post('/rag/stream', async (c) => {
  const question = await langServeInput(c)
  if (!question) return c.json({ detail: 'input must be a string or { input: string }' }, 422)
  return streamSSE(c, async (stream) => {
    await stream.writeSSE({
      event: 'metadata',
      data: JSON.stringify({ run_id: crypto.randomUUID() }),
    })
    // LangServe streams the output's parts as they are produced: first the input and documents, then the answer.
    const context = await retriever.invoke(question)
    await stream.writeSSE({ event: 'data', data: JSON.stringify({ input: question }) })
    await stream.writeSSE({
      event: 'data',
      data: JSON.stringify({ context: context.map(pythonStyle) }),
    })
    for await (const token of await answerChain(c.env).stream({ input: question, context })) {
      await stream.writeSSE({ event: 'data', data: JSON.stringify({ answer: token }) })
    }
    await stream.writeSSE({ event: 'end', data: '' })
  })
})

export default app
