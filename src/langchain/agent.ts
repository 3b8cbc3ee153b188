/**
 * `ragGuardMiddleware()`: RAG Guard inside a LangChain agent (`createAgent`). Before each model
 * call that follows new retrieval (tool results since the last user message), it judges the
 * user's question against what was retrieved; a block ends the run there, before the model
 * writes an answer. After the model's final answer, it puts the verdict in the message's
 * metadata, and judges an answer given with nothing retrieved as the Worker does (no documents).
 * With the groundedness check, the final answer itself is judged there too (a block replaces its
 * text), and the verdict is the most severe of the two checks.
 */
import { AIMessage, type BaseMessage } from '@langchain/core/messages'
import { AsyncLocalStorageProviderSingleton } from '@langchain/core/singletons'
import { createMiddleware } from 'langchain'
import * as z from 'zod'
import { readLimits } from '../guard/extract'
import { combinedDecision } from '../guard/decision'
import { repairedText, repairOf } from '../guard/repair'
import type { Check } from '../judge/prompt'
import { cacheScope, decideTurn, promptVersionOf } from './decide'
import { answerDigest, StateSeal, turnDigest, type RagGuardAgentState } from './agent-state'
import { retrievals, retrievedDocuments, turnId, turnQuestion, turnStart } from './messages'
import { resolveMiddlewareOptions, type RagGuardMiddlewareOptions } from './options'
import {
  checkPart,
  combinedVerdict,
  enforcesBlock,
  repairOfVerdict,
  RAG_GUARD_KEY,
  RagGuardBlockedError,
  verdictOf,
  type RagGuardCheckVerdict,
  type RagGuardVerdict,
} from './verdict'

export type { RagGuardAgentState } from './agent-state'

/** What a hook sees and returns of the state. */
interface GuardState {
  messages: BaseMessage[]
  /** What the state holds: the guard's own verdict only if its seal opens (see `agent-state`). */
  [RAG_GUARD_KEY]?: unknown
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

/** The verdict of a state, without what only the state keeps. */
function stripped(state: RagGuardAgentState): RagGuardVerdict {
  const {
    turn: _turn,
    through: _through,
    digest: _digest,
    answerDigest: _answer,
    seal: _seal,
    ...verdict
  } = state
  return verdict
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
  const several = settings.checks.length > 1
  const grounded = settings.checks.includes('groundedness')
  const promptVersion = (check: Check) => promptVersionOf(settings.judge, check)
  // The state's verdicts are reused only when this middleware wrote them (issue 24).
  const seal = new StateSeal()

  /**
   * The decision of `checks` for the current turn, as the state keeps it (with several checks,
   * each one's part). `answer`: the final answer's text, for groundedness.
   */
  async function judgeTurn(
    question: ReturnType<typeof turnQuestion>,
    context: ReturnType<typeof retrievedDocuments>,
    runtime: HookRuntime,
    checks: readonly Check[],
    answer?: string,
  ) {
    const { decision, documents } = await decideTurn(
      settings,
      {
        question,
        context,
        scope: cacheScope(settings, {
          configurable: runtime.configurable,
          context: runtime.context,
        }),
        // The node's run, where LangChain keeps it (AsyncLocalStorage): the judge call is its child.
        callbacks: AsyncLocalStorageProviderSingleton.getRunnableConfig()?.callbacks,
        signal: runtime.signal,
        // The final AI message can still be replaced by its repaired text.
        repairable: answer !== undefined,
      },
      answer,
      checks,
    )
    // With several checks the verdict names its parts, even when only one was asked so far.
    const whole =
      several && !decision.checks ? combinedDecision([[checks[0]!, decision]]) : decision
    const applied = enforcesBlock(whole) || repairOf(whole) !== undefined
    return verdictOf(whole, { applied, documents, promptVersion })
  }

  /** Hands out the turn's verdict: to `onVerdict`, and, blocked with `exitBehavior: 'error'`, thrown. */
  function report(verdict: RagGuardVerdict): RagGuardVerdict {
    settings.onVerdict?.(verdict)
    if (enforcesBlock(verdict) && settings.exitBehavior === 'error')
      throw new RagGuardBlockedError(verdict)
    return verdict
  }

  return createMiddleware({
    name: 'RagGuardMiddleware',
    stateSchema: z.object({ ragGuard: z.custom<RagGuardAgentState>().optional() }),
    beforeModel: {
      canJumpTo: ['end'],
      hook: async (state: GuardState, runtime: HookRuntime) => {
        // Sufficiency is judged before the answer is written; groundedness only once it is.
        if (!settings.checks.includes('sufficiency')) return undefined
        const { messages } = state
        const start = turnStart(messages)
        if (start < 0) return undefined
        const found = retrievals(messages, start, settings.tools)
        // Nothing retrieved yet: the model is about to choose its tools, not to answer.
        if (found.length === 0) return undefined
        const question = turnQuestion(messages, start, limits)
        const context = retrievedDocuments(found, limits)
        const digest = await turnDigest(question, context)
        // This question and these documents were judged already, by this guard.
        if ((await seal.opened(state.ragGuard))?.digest === digest) return undefined
        const verdict = await judgeTurn(question, context, runtime, ['sufficiency'])
        // With groundedness, the turn's verdict is handed out once the answer is judged too,
        // unless this one ends the run.
        if (!grounded || verdict.applied) report(verdict)
        const turn = turnId(messages, start)
        const through = found.at(-1)!.id ?? `tool-result-${found.length}`
        const ragGuard = await seal.sealed({ ...verdict, turn, through, digest })
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
      // With nothing retrieved, no documents support the answer, as in the Worker (score
      // `noDocumentsScore`).
      const found = retrievals(messages, start, settings.tools)
      const context =
        found.length > 0 ? retrievedDocuments(found, limits) : { ok: true as const, documents: [] }
      const question = turnQuestion(messages, start, limits)
      const digest = await turnDigest(question, context)
      const answered = grounded ? await answerDigest(answer.text) : undefined
      const own = await seal.opened(state.ragGuard)
      // Only this guard's verdict of this question and these documents counts; with
      // groundedness, of this answer too.
      const judged = own?.digest === digest ? stripped(own) : undefined
      if (
        judged &&
        (!grounded || (own!.answerDigest === answered && judged.checks?.groundedness))
      ) {
        return { messages: [withVerdict(answer, answer.content, judged)] }
      }
      // The answer is written: the checks not judged yet are judged with it — groundedness, and
      // with nothing judged before (nothing retrieved in the turn), every check.
      const checks = judged ? (['groundedness'] as const) : settings.checks
      let verdict = await judgeTurn(question, context, runtime, checks, answer.text)
      if (judged) {
        // Sufficiency was judged before the answer: the turn's verdict is the most severe.
        verdict = combinedVerdict(
          [
            ['sufficiency', judged.checks?.sufficiency ?? checkPart(judged)],
            ['groundedness', verdict.checks?.groundedness ?? checkPart(verdict)],
          ],
          { mode: settings.mode, applied: false, documents: verdict.documents },
        )
        verdict.applied = enforcesBlock(verdict) || repairOfVerdict(verdict) !== undefined
      }
      report(verdict)
      // A block replaces the answer the model wrote (the message keeps its id); a repair, with
      // the answer less its unsupported sentences.
      const repair = repairOfVerdict(verdict)
      const content = repair
        ? repairedText(answer.text, repair.removed)
        : verdict.applied
          ? settings.fallbackMessage
          : answer.content
      const through =
        found.at(-1)?.id ?? (found.length > 0 ? `tool-result-${found.length}` : undefined)
      const ragGuard = await seal.sealed({
        ...verdict,
        turn: turnId(messages, start),
        ...(through ? { through } : {}),
        digest,
        ...(answered ? { answerDigest: answered } : {}),
      })
      return { ragGuard, messages: [withVerdict(answer, content, verdict)] }
    },
  })
}
