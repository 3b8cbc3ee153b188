/**
 * `ragGuardMiddleware()`: RAG Guard inside a LangChain agent (`createAgent`). Before each model
 * call that follows new retrieval (tool results since the last user message), it judges the
 * user's question against what was retrieved; a block ends the run there, before the model
 * writes an answer. After the model's final answer, it puts the verdict in the message's
 * metadata, and judges an answer given with nothing retrieved as the Worker does (no documents).
 */
import { AIMessage, type BaseMessage } from '@langchain/core/messages'
import { AsyncLocalStorageProviderSingleton } from '@langchain/core/singletons'
import { createMiddleware } from 'langchain'
import * as z from 'zod'
import { readLimits } from '../guard/extract'
import { cacheScope, decideTurn } from './decide'
import { retrievals, retrievedDocuments, turnId, turnQuestion, turnStart } from './messages'
import { resolveMiddlewareOptions, type RagGuardMiddlewareOptions } from './options'
import {
  enforcesBlock,
  RAG_GUARD_KEY,
  RagGuardBlockedError,
  verdictOf,
  type RagGuardVerdict,
} from './verdict'

/** The verdict in the agent's state (`state.ragGuard`), with the turn it belongs to. */
export interface RagGuardAgentState extends RagGuardVerdict {
  /** The id of the user message whose turn was judged. */
  turn: string
  /** The id of the last tool result judged; none when the model answered without retrieval. */
  through?: string
}

/** What a hook sees and returns of the state. */
interface GuardState {
  messages: BaseMessage[]
  [RAG_GUARD_KEY]?: RagGuardAgentState
}

interface HookRuntime {
  configurable?: Record<string, unknown>
  context?: unknown
  signal?: AbortSignal
}

/** The answer with the verdict in its metadata (and its text replaced on block); its id is kept. */
function withVerdict(answer: AIMessage, content: AIMessage['content'], verdict: RagGuardVerdict) {
  return new AIMessage({
    id: answer.id,
    name: answer.name,
    content,
    tool_calls: answer.tool_calls,
    invalid_tool_calls: answer.invalid_tool_calls,
    additional_kwargs: answer.additional_kwargs,
    usage_metadata: answer.usage_metadata,
    response_metadata: { ...answer.response_metadata, [RAG_GUARD_KEY]: verdict },
  })
}

/**
 * RAG Guard as agent middleware: the user's question is judged against what the agent's tools
 * retrieved, before the model writes the answer. **block** ends the run without that model call,
 * with `fallbackMessage` as the final AI message; **flag** and **pass** let the run go on. The
 * verdict is in the state (`ragGuard`) and in the final AI message's `response_metadata.ragGuard`.
 *
 * @example
 * ```ts
 * import { createAgent } from 'langchain'
 * import { ChatOpenAI } from '@langchain/openai'
 * import { ragGuardMiddleware } from 'rag-guard/langchain'
 *
 * const agent = createAgent({
 *   model: new ChatOpenAI({ model: 'gpt-4o-mini' }),
 *   tools: [searchDocs],
 *   middleware: [ragGuardMiddleware({ judge: { apiKey: process.env.OPENAI_API_KEY } })],
 * })
 * const result = await agent.invoke({ messages: [{ role: 'user', content: question }] })
 * console.log(result.ragGuard.verdict, result.messages.at(-1)?.content)
 * ```
 */
export function ragGuardMiddleware(options: RagGuardMiddlewareOptions) {
  const settings = resolveMiddlewareOptions(options)
  const limits = readLimits(settings)

  /** The decision for the current turn, as the state keeps it. */
  async function judgeTurn(
    messages: BaseMessage[],
    start: number,
    context: ReturnType<typeof retrievedDocuments>,
    runtime: HookRuntime,
  ) {
    const { decision, documents } = await decideTurn(settings, {
      question: turnQuestion(messages, start, limits),
      context,
      scope: cacheScope(settings, { configurable: runtime.configurable, context: runtime.context }),
      // The node's run, where LangChain keeps it (AsyncLocalStorage): the judge call is its child.
      callbacks: AsyncLocalStorageProviderSingleton.getRunnableConfig()?.callbacks,
      signal: runtime.signal,
    })
    const applied = enforcesBlock(decision)
    const verdict = verdictOf(decision, {
      applied,
      documents,
      promptVersion: settings.judge.promptVersion,
    })
    settings.onVerdict?.(verdict)
    if (applied && settings.exitBehavior === 'error') throw new RagGuardBlockedError(verdict)
    return verdict
  }

  return createMiddleware({
    name: 'RagGuardMiddleware',
    stateSchema: z.object({ ragGuard: z.custom<RagGuardAgentState>().optional() }),
    beforeModel: {
      canJumpTo: ['end'],
      hook: async (state: GuardState, runtime: HookRuntime) => {
        const { messages } = state
        const start = turnStart(messages)
        if (start < 0) return undefined
        const found = retrievals(messages, start, settings.tools)
        // Nothing retrieved yet: the model is about to choose its tools, not to answer.
        if (found.length === 0) return undefined
        const turn = turnId(messages, start)
        const through = found.at(-1)!.id ?? `tool-result-${found.length}`
        const judged = state.ragGuard
        if (judged?.turn === turn && judged.through === through) return undefined
        const verdict = await judgeTurn(messages, start, retrievedDocuments(found, limits), runtime)
        const ragGuard: RagGuardAgentState = { ...verdict, turn, through }
        if (!verdict.applied) return { ragGuard }
        const fallback = new AIMessage({
          content: settings.fallbackMessage,
          response_metadata: { [RAG_GUARD_KEY]: verdict },
        })
        return { ragGuard, messages: [fallback], jumpTo: 'end' as const }
      },
    },
    afterModel: async (state: GuardState, runtime: HookRuntime) => {
      const { messages } = state
      const answer = messages.at(-1)
      if (!AIMessage.isInstance(answer) || (answer.tool_calls?.length ?? 0) > 0) return undefined
      const start = turnStart(messages)
      if (start < 0) return undefined
      const turn = turnId(messages, start)
      const judged = state.ragGuard?.turn === turn ? state.ragGuard : undefined
      if (judged) {
        const { turn: _turn, through: _through, ...verdict } = judged
        return { messages: [withVerdict(answer, answer.content, verdict)] }
      }
      // The model answered with nothing retrieved in this turn: no documents support it, as in
      // the Worker (score `noDocumentsScore`), and a block replaces the answer it wrote.
      const verdict = await judgeTurn(messages, start, { ok: true, documents: [] }, runtime)
      const content = verdict.applied ? settings.fallbackMessage : answer.content
      return {
        ragGuard: { ...verdict, turn },
        messages: [withVerdict(answer, content, verdict)],
      }
    },
  })
}
