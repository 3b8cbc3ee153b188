import { describe, expect, it } from 'vitest'
import { REASON_POLICY, type GuardReason } from '../src'
import {
  judgedDecision,
  PendingDecision,
  refusalStatus,
  unjudgedDecision,
  type DecisionPolicy,
} from '../src/guard/decision'

const policy: DecisionPolicy = {
  mode: 'enforce',
  thresholds: { blockBelow: 0.2, flagBelow: 0.8 },
  groundednessThresholds: { blockBelow: 0.5, flagBelow: 0.9 },
  onError: 'block',
  onUnjudgeable: 'flag',
  noDocumentsScore: 0,
}

const judged = { check: 'sufficiency' as const, model: 'm', promptVersion: 'v', latencyMs: 3 }

describe('decisions', () => {
  it('a score goes through the thresholds', () => {
    const score = (value: number) =>
      judgedDecision(policy, {
        result: {
          ok: true,
          score: value,
          pTrue: value,
          pFalse: 1 - value,
          mass: 1,
          token: 'True',
          source: 'top_logprobs',
          estimator: 'logprobs',
          ...judged,
        },
      }).verdict
    expect([score(0.1), score(0.5), score(0.9)]).toEqual(['block', 'flag', 'pass'])
  })

  it.each<[GuardReason, string]>([
    ['judge-timeout', 'block'],
    ['low-answer-mass', 'flag'],
    ['request-too-large', 'flag'],
    ['streaming-not-supported', 'flag'],
    ['judge-context-overflow', 'flag'],
    ['response-not-ok', 'pass'],
    ['response-too-large', 'flag'],
  ])('%s takes the verdict its policy names (%s here)', (reason, verdict) => {
    expect(unjudgedDecision(policy, { reason, message: 'm' })).toMatchObject({ verdict, reason })
  })

  it('no documents is a score: noDocumentsScore through the thresholds', () => {
    expect(unjudgedDecision(policy, { reason: 'no-documents', message: 'm' })).toMatchObject({
      verdict: 'block',
      score: 0,
      reason: 'no-documents',
    })
    const lenient = { ...policy, noDocumentsScore: 0.9 }
    expect(unjudgedDecision(lenient, { reason: 'no-documents', message: 'm' })).toMatchObject({
      verdict: 'pass',
      score: 0.9,
    })
  })

  it('every reason has a policy, and only a failure of the judge’s infrastructure follows onError', () => {
    for (const [reason, policyName] of Object.entries(REASON_POLICY)) {
      expect(['onError', 'onUnjudgeable', 'noDocuments', 'pass', 'onUngrounded']).toContain(
        policyName,
      )
      if (policyName === 'onError') expect(reason).toMatch(/^judge-/)
    }
    // What the judge replied to the request's data is unjudgeable, never onError (issue 24).
    for (const reason of [
      'no-logprobs',
      'no-content-tokens',
      'unexpected-token',
      'low-answer-mass',
      'no-samples',
      'judge-refusal',
      'judge-content-filter',
      'missing-sentence-answer',
    ] as const) {
      expect(REASON_POLICY[reason], reason).toBe('onUnjudgeable')
    }
    // A repair is a flag, never a way to pass what the thresholds block entirely.
    expect(REASON_POLICY.repaired).toBe('onUngrounded')
  })

  it.each<[GuardReason, number]>([
    ['request-too-large', 413],
    ['judge-input-too-large', 413],
    ['unsupported-encoding', 415],
    ['invalid-request-body', 400],
    ['ambiguous-question', 400],
  ])('a refused %s answers %i', (reason, status) => {
    expect(refusalStatus(reason)).toBe(status)
  })

  it('a judge failure keeps the judge result and its reason', () => {
    const decision = judgedDecision(policy, {
      result: {
        ok: false,
        reason: 'judge-http-error',
        message: 'the judge API answered 500',
        status: 500,
        ...judged,
      },
      cache: 'miss',
    })
    expect(decision).toMatchObject({ verdict: 'block', reason: 'judge-http-error', cache: 'miss' })
    expect(decision.judge).toMatchObject({ status: 500 })
  })
})

describe('PendingDecision', () => {
  it('settles once: the first decision holds, and every reader sees it', async () => {
    const pending = new PendingDecision()
    const first = unjudgedDecision(policy, { reason: 'stream-buffer-exceeded', message: 'm' })
    const later = unjudgedDecision(policy, { reason: 'judge-timeout', message: 'm' })
    expect(pending.settled).toBeUndefined()
    expect(pending.settle(first)).toBe(first)
    expect(pending.settle(later)).toBe(first)
    expect(await pending.promise).toBe(first)
  })

  it('follows a promise unless something settles first', async () => {
    const pending = new PendingDecision()
    let resolve!: (value: ReturnType<typeof unjudgedDecision>) => void
    pending.follow(new Promise((done) => (resolve = done)))
    const overflow = unjudgedDecision(policy, { reason: 'stream-buffer-exceeded', message: 'm' })
    pending.settle(overflow)
    resolve(unjudgedDecision(policy, { reason: 'judge-timeout', message: 'm' }))
    await Promise.resolve()
    expect(await pending.promise).toBe(overflow)
  })
})
