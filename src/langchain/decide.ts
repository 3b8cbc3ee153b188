/**
 * One decision for a question and its documents, as the Worker makes it (`Exchange.decide`): the
 * question and the documents bounded by the judge's input limits, no documents scored without a
 * judge call, then the verdict cache and the judge. Every verdict is built by `guard/decision`.
 */
import type { Callbacks } from '@langchain/core/callbacks/manager'
import type { ContextReading, QuestionReading } from '../formats/context'
import {
  judgedDecision,
  unjudgedDecision,
  type GuardDecision,
  type Unjudged,
} from '../guard/decision'
import { boundedDocuments, boundedQuestion } from '../guard/extract'
import { createJudging } from '../guard/judging'
import type { Judge } from '../judge/judge'
import type { LangChainSettings } from './options'

export interface Turn {
  question: QuestionReading
  context: ContextReading | Unjudged
  /** Whose cached scores the turn may use ('' when the cache is shared). */
  scope: string
  /** The callbacks of the run the judge call belongs to: tracing shows it as its child. */
  callbacks?: Callbacks
  signal?: AbortSignal
}

export interface Decided {
  decision: GuardDecision
  /** How many documents the judge was given. */
  documents: number
}

/** The judge, each call made with `callbacks`; everything else is the judge's own. */
function tracedJudge(judge: Judge, callbacks: Callbacks | undefined): Judge {
  if (!callbacks) return judge
  const traced: Judge = Object.create(judge)
  traced.judge = (input, options) => judge.judge(input, { ...options, callbacks })
  return traced
}

/** The decision for one turn. Never rejects: the judge never does, and a failed cache is a miss. */
export async function decideTurn(settings: LangChainSettings, turn: Turn): Promise<Decided> {
  const unjudged = (reason: Omit<Unjudged, 'ok'>): Decided => ({
    decision: unjudgedDecision(settings, reason),
    documents: 0,
  })
  const question = boundedQuestion(turn.question, settings)
  if ('ok' in question) return unjudged(question)
  if (!turn.context.ok) return unjudged(turn.context)
  const bounded = boundedDocuments(turn.context, question, settings)
  if ('ok' in bounded) return unjudged(bounded)
  if (bounded.documents.length === 0) {
    return unjudged({ reason: 'no-documents', message: 'no documents were retrieved' })
  }
  const judging = createJudging(tracedJudge(settings.judge, turn.callbacks), settings.cache)
  const outcome = await judging({
    question: question.question,
    history: question.history,
    documents: bounded.documents,
    check: 'sufficiency',
    scope: turn.scope,
    signal: turn.signal ?? new AbortController().signal,
    // No runtime to keep alive here: the cache write runs on its own (it never rejects).
    defer: (work) => void work.catch(() => {}),
  })
  return {
    decision: {
      ...judgedDecision(settings, outcome),
      ...(bounded.truncated ? { truncated: true } : {}),
    },
    documents: bounded.documents.length,
  }
}

/** Whose cached scores a caller may use: its id with `cacheScope: 'caller'`, else everyone's. */
export function cacheScope(
  settings: LangChainSettings,
  caller: Parameters<NonNullable<LangChainSettings['callerId']>>[0],
): string {
  return settings.cacheScope === 'caller' ? (settings.callerId?.(caller) ?? '') : ''
}
