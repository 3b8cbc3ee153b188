/**
 * Issue 12, finding 8: the minimum answer mass. When True and False together cover less than
 * JUDGE_MIN_MASS (default 0.5) of the judge's first-token distribution, their ratio is no score:
 * the judge mostly said something else. The reason is low-answer-mass. Since issue 24 (finding 2)
 * it is the judge's reply to the data, so ON_UNJUDGEABLE decides (block by default), not ON_ERROR.
 */
import { describe, expect, it } from 'vitest'
import { createJudge } from '../../src'
import { judgeSays } from '../guard-helpers'
import { scriptModel } from '../helpers'
import type { StubStep } from '../stub/openai-stub'
import { post, secureGuard, UPSTREAM_ANSWER } from './helpers'

/** The distribution: Yes 0.6, True 0.3, False 0.02 (True + False = 0.32). */
function lowMass(first: 'Yes' | 'True'): StubStep {
  return {
    token: first,
    logprob: Math.log(first === 'Yes' ? 0.6 : 0.3),
    topLogprobs: [
      { token: 'Yes', logprob: Math.log(0.6) },
      { token: 'True', logprob: Math.log(0.3) },
      { token: 'False', logprob: Math.log(0.02) },
    ],
  }
}

/** True 0.45, Yes 0.4, False 0.1: True + False = 0.55. */
const justEnough: StubStep = {
  token: 'True',
  logprob: Math.log(0.45),
  topLogprobs: [
    { token: 'True', logprob: Math.log(0.45) },
    { token: 'Yes', logprob: Math.log(0.4) },
    { token: 'False', logprob: Math.log(0.1) },
  ],
}

const ask = post({
  question: 'Which company manufactures the bikes?',
  context: ['The bikes are blue.'],
})
const answer = { json: { answer: UPSTREAM_ANSWER } }

describe('finding 8: True + False below JUDGE_MIN_MASS is no score (low-answer-mass → ON_UNJUDGEABLE)', () => {
  // With True chosen, the mass is what is wrong: low-answer-mass. With Yes chosen, the judge did
  // not answer the question at all, which has its own, older code: unexpected-token. Either way
  // no score, and the ON_UNJUDGEABLE verdict (block by default: a document can cause it).
  it.each([
    ['True', 'low-answer-mass'],
    ['Yes', 'unexpected-token'],
  ] as const)(
    'Yes 0.6 / True 0.3 / False 0.02, first token %s: no score (%s), verdict block',
    async (first, reason) => {
      const { send } = await secureGuard(answer, lowMass(first))
      const response = await send('/ask', ask, 'operator')
      expect(response.status).toBe(200)
      expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
      expect(response.headers.get('x-rag-guard-score')).toBeNull()
      expect(await response.text()).not.toContain(UPSTREAM_ANSWER)
    },
  )

  it('with ON_UNJUDGEABLE=flag, a low answer mass is delivered, flagged', async () => {
    const { send } = await secureGuard(answer, lowMass('True'), { ON_UNJUDGEABLE: 'flag' })
    const response = await send('/ask', ask, 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-reason')).toBe('low-answer-mass')
    expect(await response.text()).toContain(UPSTREAM_ANSWER)
  })

  it('a mass of 0.55 is enough under the default 0.5: scored 0.45 / 0.55', async () => {
    const { send } = await secureGuard(answer, justEnough)
    const response = await send('/ask', ask, 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-score')).toBe((0.45 / 0.55).toFixed(4))
    expect(response.headers.get('x-rag-guard-reason')).toBeNull()
  })

  it('JUDGE_MIN_MASS=0.3 accepts the 0.32 mass: scored 0.3 / 0.32', async () => {
    const { send } = await secureGuard(answer, lowMass('True'), { JUDGE_MIN_MASS: '0.3' })
    const response = await send('/ask', ask, 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-score')).toBe((0.3 / 0.32).toFixed(4))
  })

  it('JUDGE_MIN_MASS=0.9 refuses the 0.55 mass', async () => {
    const { send } = await secureGuard(answer, justEnough, { JUDGE_MIN_MASS: '0.9' })
    const response = await send('/ask', ask, 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-reason')).toBe('low-answer-mass')
    expect(response.headers.get('x-rag-guard-score')).toBeNull()
  })

  it('createJudge: the minMass option, and low-answer-mass as a no-score result', async () => {
    const model = await scriptModel(justEnough)
    const judge = createJudge({
      apiKey: 'sk-test',
      baseURL: model.baseURL,
      maxRetries: 0,
      minMass: 0.9,
    } as Parameters<typeof createJudge>[0])
    const result = await judge.judge({ question: 'q?', context: ['c'] })
    expect(result.ok).toBe(false)
    expect(!result.ok && result.reason).toBe('low-answer-mass')
  })

  it('a judge that answers plainly (True 0.9 / False 0.1) still scores', async () => {
    const { send } = await secureGuard(answer, judgeSays(0.9))
    const response = await send('/ask', ask, 'operator')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.9000')
  })
})
