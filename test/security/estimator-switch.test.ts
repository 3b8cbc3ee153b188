/**
 * Issue 24, finding 3: one odd reply must not change the estimator for the judge's whole life
 * (an isolate, in a Worker). `auto` turns to sampling only on the provider's structured refusal
 * of logprobs (a 400 whose error names `logprobs` in `param`, or says `unsupported_parameter`),
 * never on a 200 reply without logprobs (a content filter gives one) nor on a 400 whose free
 * text merely mentions logprobs (the text can quote the request's data). Sampling stops asking
 * with `n` only on a structured refusal of `n`, or after N replies in a row without the N
 * choices. Each switch is logged once, with its cause.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createJudge, type JudgeOptions } from '../../src'
import { scriptModel } from '../helpers'
import type { RecordedRequest, StubScript, StubStep } from '../stub/openai-stub'

const input = { question: 'Which company makes the bikes?', context: ['The bikes are blue.'] }
const sent = (request: RecordedRequest) => request.body as { logprobs?: boolean; n?: number }
const healthy: StubStep = {
  token: 'True',
  logprob: Math.log(0.9),
  topLogprobs: [
    { token: 'True', logprob: Math.log(0.9) },
    { token: 'False', logprob: Math.log(0.1) },
  ],
}

async function judgeOf(script: StubScript, options: JudgeOptions) {
  const model = await scriptModel(script)
  const judge = createJudge({
    apiKey: 'sk-test',
    baseURL: model.baseURL,
    maxRetries: 0,
    ...options,
  })
  return { model, judge }
}

/** The message of the first line logged (the judge logs JSON lines). */
const logged = (warn: { mock: { calls: unknown[][] } }) =>
  (JSON.parse(String(warn.mock.calls[0]![0])) as { message: string }).message

afterEach(() => {
  vi.restoreAllMocks()
})

describe('finding 3: auto turns to sampling only on a structured refusal of logprobs', () => {
  it('one 200 reply without logprobs is that request’s no-logprobs; the next request still uses logprobs', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { model, judge } = await judgeOf(
      { steps: [{ token: 'True', noLogprobs: true }, healthy] },
      { estimator: 'auto' },
    )
    expect(await judge.judge(input)).toMatchObject({
      ok: false,
      reason: 'no-logprobs',
      estimator: 'logprobs',
    })
    expect(judge.currentEstimator).toBe('logprobs')
    expect(await judge.judge(input)).toMatchObject({ ok: true, estimator: 'logprobs' })
    const requests = await model.requests()
    expect(requests.map((request) => sent(request).logprobs)).toEqual([true, true])
    expect(warn).not.toHaveBeenCalled()
  })

  it('a 400 whose free text quotes "logprobs are not supported" (no param, no code) does not switch', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const quoted: StubStep = {
      status: 400,
      json: {
        error: {
          message: 'Invalid prompt: "logprobs are not supported" appears in the messages.',
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      },
    }
    const { model, judge } = await judgeOf({ steps: [quoted, healthy] }, { estimator: 'auto' })
    expect(await judge.judge(input)).toMatchObject({
      ok: false,
      reason: 'judge-http-error',
      estimator: 'logprobs',
    })
    expect(judge.currentEstimator).toBe('logprobs')
    expect(await judge.judge(input)).toMatchObject({ ok: true, estimator: 'logprobs' })
    expect(await model.requests()).toHaveLength(2)
    expect(warn).not.toHaveBeenCalled()
  })

  it('the structured refusal (400, param "logprobs", code "unsupported_parameter") switches, logged once with its cause', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { judge } = await judgeOf(
      { rejectLogprobs: true, samples: ['True'] },
      { estimator: 'auto' },
    )
    expect(await judge.judge(input)).toMatchObject({ ok: true, estimator: 'sampling' })
    expect(await judge.judge(input)).toMatchObject({ ok: true, estimator: 'sampling' })
    expect(judge.currentEstimator).toBe('sampling')
    expect(warn).toHaveBeenCalledTimes(1)
    expect(logged(warn)).toMatch(/refused "logprobs"/)
  })
})

describe('finding 3: sampling stops asking with n only on a structured refusal, or N short replies in a row', () => {
  it('one reply with a single choice does not stop n: the next call asks for all N at once again', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const ignored: StubStep = { n: 'ignore', samples: ['True'] }
    const honoured: StubStep = { samples: ['True'] }
    const { model, judge } = await judgeOf(
      { steps: [ignored, honoured, honoured, honoured] },
      { estimator: 'sampling', samples: 3 },
    )
    expect(await judge.judge(input)).toMatchObject({ ok: true, samples: 3, requests: 3 })
    expect(await judge.judge(input)).toMatchObject({ ok: true, samples: 3, requests: 1 })
    const requests = await model.requests()
    expect(requests.map((request) => sent(request).n)).toEqual([3, undefined, undefined, 3])
    expect(warn).not.toHaveBeenCalled()
  })

  it('N replies in a row without the N choices: from then on, separate requests, logged once', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { model, judge } = await judgeOf(
      { n: 'ignore', samples: ['True'] },
      { estimator: 'sampling', samples: 3 },
    )
    for (let call = 0; call < 4; call++) await judge.judge(input)
    const asked = (await model.requests()).map((request) => sent(request).n ?? 1)
    // Three calls each asked for 3 at once (and got 1); the fourth asks for one at a time.
    expect(asked.filter((n) => n === 3)).toHaveLength(3)
    expect(asked.slice(-3)).toEqual([1, 1, 1])
    expect(asked).toHaveLength(3 * 3 + 3)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(logged(warn)).toMatch(/3 replies in a row/)
  })

  it('a 400 whose text only mentions n (no param) is no refusal of n', async () => {
    const quoted: StubStep = {
      status: 400,
      json: { error: { message: "'n' must be shorter", type: 'invalid_request_error' } },
    }
    const { model, judge } = await judgeOf(
      { steps: [quoted, { samples: ['True'] }] },
      { estimator: 'sampling', samples: 3 },
    )
    expect(await judge.judge(input)).toMatchObject({ ok: false, reason: 'judge-http-error' })
    expect(await judge.judge(input)).toMatchObject({ ok: true, requests: 1 })
    expect((await model.requests()).map((request) => sent(request).n)).toEqual([3, 3])
  })

  it('the structured refusal of n (400, param "n") switches at once', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { model, judge } = await judgeOf(
      { n: 'reject', samples: ['True'] },
      { estimator: 'sampling', samples: 3 },
    )
    await judge.judge(input)
    await judge.judge(input)
    expect((await model.requests()).map((request) => sent(request).n ?? 1)).toEqual([
      3, 1, 1, 1, 1, 1, 1,
    ])
  })
})
