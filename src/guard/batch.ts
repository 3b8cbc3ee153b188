/**
 * Acting on a batch answer (LangServe `/batch`): one decision per input, judged in parallel,
 * and one for the whole — the most severe. In enforce mode, each blocked input's answer is
 * replaced by the fallback; the others are passed on as they came.
 */
import type { BatchFormat } from '../formats'
import { brokenAnswer, NOT_JSON, readAnswer, unreadAnswer } from './answer'
import { mostSevere, type GuardDecision } from './decision'
import type { DecisionContent } from './decision-log'
import type { Exchange } from './exchange'
import { readLimits } from './extract'
import { replacedBody, type Outcome } from './respond'

/** The decision for the whole batch: the most severe item's (the lowest score among equals), with every item's. */
export function batchDecision(items: GuardDecision[]): GuardDecision {
  return { ...mostSevere(items), items }
}

export async function guardBatch(
  exchange: Exchange,
  response: Response,
  format: BatchFormat,
): Promise<Outcome> {
  const { settings } = exchange
  const questions = exchange.input.batch!
  const read = await readAnswer(response, settings.maxBodyBytes)
  if (read.kind === 'broken') return brokenAnswer(exchange)
  if (read.kind === 'too-large') {
    exchange.settleUnjudged(unreadAnswer('too-large', settings.maxBodyBytes))
  } else {
    const contexts = read.upstream.ok
      ? format.contexts(read.upstream.value, readLimits(settings))
      : undefined
    if (!contexts || contexts.length !== questions.length) {
      exchange.settleUnjudged(
        read.upstream.ok
          ? { ...NOT_JSON, message: 'the batch answer does not hold one output per input' }
          : NOT_JSON,
      )
    } else {
      exchange.started = true
      // The answers are read for the groundedness check, and for the decision's sinks (the
      // store keeps each item's text, as for a single request).
      const answers =
        (exchange.needsAnswer || settings.onDecision) && read.upstream.ok
          ? format.answers?.(read.upstream.value)
          : undefined
      const about: DecisionContent[] = questions.map((question, index) => ({
        question: question.question,
        ...(answers?.[index] !== undefined ? { answer: answers[index] } : {}),
      }))
      if (settings.onDecision) exchange.items = about
      const items = await Promise.all(
        questions.map((question, index) =>
          exchange.decideAll(
            question,
            contexts[index]!,
            exchange.needsAnswer ? answers?.[index] : undefined,
            about[index],
          ),
        ),
      )
      exchange.pending.settle(batchDecision(items))
    }
  }
  const decision = await exchange.pending.promise
  if (decision.verdict !== 'block' || settings.mode !== 'enforce') {
    return { response: read.response, decision, applied: false }
  }
  const blocked = (decision.items ?? []).flatMap((item, index) =>
    item.verdict === 'block' ? [index] : [],
  )
  const body =
    read.kind === 'read' && read.upstream.ok && decision.items
      ? format.blockItems(read.upstream.value, blocked, settings.fallbackMessage)
      : undefined
  if (body === undefined) {
    // Nothing of the answer can be kept: every output is the fallback.
    const fallback = { output: questions.map(() => settings.fallbackMessage), metadata: {} }
    return { response: Response.json(fallback), decision, applied: true }
  }
  return { response: replacedBody(read.response, body), decision, applied: true }
}
