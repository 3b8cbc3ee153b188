/**
 * Issue 24, finding 1: `n` > 1 must not escape groundedness. A client that asks an endpoint
 * honouring `n` for several choices gets each of them judged, each against the thresholds; the
 * verdict is the most severe; a blocked choice is replaced in its own place, the others kept.
 */
import { describe, expect, it } from 'vitest'
import { judgeSays } from '../guard-helpers'
import { GROUNDEDNESS_PROMPT, SUFFICIENCY_PROMPT } from '../helpers'
import { calls, CHAT_COMPLETION, FALLBACK, post, secureGuard } from './helpers'

const GROUNDED = 'GROUNDED-ANSWER The bikes are blue.'
const INVENTED = 'INVENTED-ANSWER Acme makes the bikes.'

/** The judge: sufficient context; each answer's groundedness by what it says. */
const judge = {
  rules: [
    { contains: 'INVENTED-ANSWER', step: judgeSays(0.02) },
    { contains: 'GROUNDED-ANSWER', step: judgeSays(0.95) },
    { contains: SUFFICIENCY_PROMPT, step: judgeSays(0.95) },
  ],
  otherwise: { status: 500 },
}

const choice = (index: number, content: string) => ({
  index,
  message: { role: 'assistant', content, refusal: null },
  logprobs: null,
  finish_reason: 'stop',
})

const completion = (...contents: string[]) => ({
  json: { ...CHAT_COMPLETION, choices: contents.map((content, index) => choice(index, content)) },
})

const ask = post({
  model: 'rag-model',
  n: 2,
  messages: [
    { role: 'system', content: 'The bikes are blue.' },
    { role: 'user', content: 'What colour are the bikes?' },
  ],
})

const routes = (checks: string[]) => ({
  GUARD_ROUTES: [{ path: '/v1/chat/completions', format: 'openai-chat', checks }],
})

describe('finding 1: every choice of a whole answer is judged for groundedness', () => {
  it('n = 2, the second choice invented: blocked, the first kept, the second replaced in place', async () => {
    const setup = await secureGuard(completion(GROUNDED, INVENTED), judge, routes(['groundedness']))
    const response = await setup.send('/v1/chat/completions', ask, 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const body = (await response.json()) as typeof CHAT_COMPLETION
    expect(body.choices.map((each) => each.message.content)).toEqual([GROUNDED, FALLBACK])
    expect(body.choices.map((each) => each.index)).toEqual([0, 1])
    expect(body.id).toBe(CHAT_COMPLETION.id)
    // One groundedness call per choice.
    const prompts = (await setup.judge.requests()).filter((request) =>
      JSON.stringify(request.body).includes(GROUNDEDNESS_PROMPT),
    )
    expect(prompts).toHaveLength(2)
  })

  it('the first choice invented: the verdict is block whichever choice it is', async () => {
    const setup = await secureGuard(completion(INVENTED, GROUNDED), judge, routes(['groundedness']))
    const response = await setup.send('/v1/chat/completions', ask, 'operator')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const body = (await response.json()) as typeof CHAT_COMPLETION
    expect(body.choices.map((each) => each.message.content)).toEqual([FALLBACK, GROUNDED])
  })

  it('with both checks, a choice’s groundedness block decides (sufficiency passed)', async () => {
    const setup = await secureGuard(
      completion(GROUNDED, GROUNDED, INVENTED),
      judge,
      routes(['sufficiency', 'groundedness']),
    )
    const response = await setup.send('/v1/chat/completions', ask, 'operator')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-check')).toBe('groundedness')
    const body = (await response.json()) as typeof CHAT_COMPLETION
    expect(body.choices.map((each) => each.message.content)).toEqual([GROUNDED, GROUNDED, FALLBACK])
  })

  it('every choice grounded: passed on byte for byte', async () => {
    const upstream = completion(GROUNDED, GROUNDED)
    const setup = await secureGuard(upstream, judge, routes(['groundedness']))
    const response = await setup.send('/v1/chat/completions', ask, 'operator')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(JSON.stringify(upstream.json))
    expect(await calls(setup.judge)).toBe(2)
  })

  it('more choices than JUDGE_MAX_BATCH are not judged one by one: unjudgeable, blocked', async () => {
    const many = Array.from({ length: 5 }, () => GROUNDED)
    const setup = await secureGuard(completion(...many), judge, {
      ...routes(['groundedness']),
      JUDGE_MAX_BATCH: '4',
    })
    const response = await setup.send('/v1/chat/completions', ask, 'operator')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-reason')).toBe('judge-input-too-large')
    expect(await response.text()).not.toContain('GROUNDED-ANSWER')
    expect(await calls(setup.judge)).toBe(0)
  })
})
