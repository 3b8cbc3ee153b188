/**
 * A LangChain agent over the sample documents, guarded by RAG Guard: its one tool retrieves
 * from the bike-share documents of the sample RAG service, and `ragGuardMiddleware` judges every
 * question against what the tool found before the agent's model writes an answer.
 */
import { Document } from '@langchain/core/documents'
import { ChatOpenAI } from '@langchain/openai'
import { createAgent, tool } from 'langchain'
import * as z from 'zod'
import { ragGuardMiddleware, type RagGuardVerdict } from 'rag-guard/langchain'
import { retrieve } from '../rag-service/retriever'

/** The retriever as a tool: the documents' text for the model, the documents as its artifact. */
export const searchDocuments = tool(
  async ({ query }) => {
    const found = retrieve(query)
    return [
      found.map((document) => `${document.title}: ${document.text}`).join('\n\n'),
      found.map(
        (document) =>
          new Document({
            pageContent: document.text,
            metadata: { id: document.id, title: document.title },
          }),
      ),
    ]
  },
  {
    name: 'search_documents',
    description: 'Searches the Harbor City Bike Share documents: prices, rules, opening hours.',
    schema: z.object({ query: z.string().describe('what to look up') }),
    responseFormat: 'content_and_artifact',
  },
)

export interface SampleAgentOptions {
  /** Any OpenAI-compatible server; the OpenAI API without it. */
  baseURL?: string
  apiKey?: string
  /** The agent's own model. @default 'gpt-4o-mini' */
  model?: string
  /** The judge model; it must return logprobs. @default 'gpt-4o-mini' */
  judgeModel?: string
  /** Receives each verdict as it is made. */
  onVerdict?: (verdict: RagGuardVerdict) => void
}

export function sampleAgent(options: SampleAgentOptions = {}) {
  const connection = {
    apiKey: options.apiKey || 'no-key',
    configuration: options.baseURL ? { baseURL: options.baseURL } : {},
  }
  // The judge is any LangChain chat model that returns logprobs, passed in as an instance.
  const judge = new ChatOpenAI({
    model: options.judgeModel ?? 'gpt-4o-mini',
    logprobs: true,
    topLogprobs: 20,
    maxTokens: 1,
    temperature: 0,
    ...connection,
  })
  return createAgent({
    model: new ChatOpenAI({ model: options.model ?? 'gpt-4o-mini', temperature: 0, ...connection }),
    tools: [searchDocuments],
    systemPrompt:
      'You answer questions about Harbor City Bike Share. Look the answer up with search_documents first, and answer only from what it returns.',
    middleware: [
      ragGuardMiddleware({
        judge: { chatModel: judge },
        // The demo's thresholds, as in wrangler.toml: uncalibrated starting points.
        blockBelow: 0.2,
        flagBelow: 0.8,
        ...(options.onVerdict ? { onVerdict: options.onVerdict } : {}),
      }),
    ],
  })
}
