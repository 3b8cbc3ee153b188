import { describe, expect, it } from 'vitest'
import { classifyToken, scoreLogprobs, type TokenLogprob } from '../src'
import dotnet from './fixtures/openai-logprobs/openai-dotnet_TokenLogProbabilities_True.json'
import dotnetAsync from './fixtures/openai-logprobs/openai-dotnet_TokenLogProbabilities_True_Async.json'
import dotnetStream from './fixtures/openai-logprobs/openai-dotnet_TokenLogProbabilitiesStreaming_True.chunks.json'
import nodeContentStream from './fixtures/openai-logprobs/openai-node_content_logprobs_stream.chunks.json'
import nodeRefusalStream from './fixtures/openai-logprobs/openai-node_refusal_logprobs_stream.chunks.json'
import pythonContentStream from './fixtures/openai-logprobs/openai-python_content_logprobs_stream.chunks.json'
import pythonRefusalStream from './fixtures/openai-logprobs/openai-python_refusal_logprobs_stream.chunks.json'
import responsesApi from './fixtures/openai-logprobs/pydantic-ai_responses_api_logprobs.json'
import { binaryTopLogprobs } from './helpers'

const first = (token: string, logprob: number, top: Array<{ token: string; logprob: number }>) => ({
  content: [{ token, logprob, top_logprobs: top }],
})

describe('classifyToken', () => {
  it.each([
    ['True', 'true'],
    [' True', 'true'],
    ['true', 'true'],
    ['TRUE', 'true'],
    ['ĠTrue', 'true'],
    ['▁True', 'true'],
    ['True\n', 'true'],
    [' False', 'false'],
    ['Ġfalse', 'false'],
    ['▁FALSE', 'false'],
  ])('reads %j as %s', (token, expected) => {
    expect(classifyToken(token)).toBe(expected)
  })

  it.each(['Tr', 'Truth', 'Yes', 'No', 'T', '', ' ', 'True.', 'untrue', 'Falsehood'])(
    'does not read %j as an answer',
    (token) => {
      expect(classifyToken(token)).toBeUndefined()
    },
  )
})

describe('scoreLogprobs', () => {
  it('is the mass of true over the mass of true and false, from the first token', () => {
    const result = scoreLogprobs(
      first('True', Math.log(0.6), [
        { token: 'True', logprob: Math.log(0.6) },
        { token: 'False', logprob: Math.log(0.2) },
        { token: 'Maybe', logprob: Math.log(0.2) },
      ]),
    )
    expect(result).toMatchObject({ ok: true, token: 'True', source: 'top_logprobs' })
    if (!result.ok) return
    expect(result.score).toBeCloseTo(0.75, 12)
    expect(result.pTrue).toBeCloseTo(0.6, 12)
    expect(result.pFalse).toBeCloseTo(0.2, 12)
    expect(result.mass).toBeCloseTo(0.8, 12)
  })

  it('never reads the chosen token probability as the score: False at 99.14% is P(True) under 1%', () => {
    const result = scoreLogprobs(
      first('False', -0.008654992, binaryTopLogprobs('False', -0.008654992)),
    )
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.score).toBeLessThan(0.0087)
    expect(result.score).toBeGreaterThan(0.008)
  })

  it('adds up every spelling of true and of false', () => {
    const result = scoreLogprobs(
      first('True', Math.log(0.4), [
        { token: 'True', logprob: Math.log(0.4) },
        { token: ' True', logprob: Math.log(0.1) },
        { token: 'true', logprob: Math.log(0.05) },
        { token: 'ĠTRUE', logprob: Math.log(0.05) },
        { token: 'False', logprob: Math.log(0.2) },
        { token: '▁false', logprob: Math.log(0.1) },
        { token: 'The', logprob: Math.log(0.1) },
      ]),
    )
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.pTrue).toBeCloseTo(0.6, 12)
    expect(result.pFalse).toBeCloseTo(0.3, 12)
    expect(result.score).toBeCloseTo(0.6 / 0.9, 12)
  })

  it('counts the -9999 "not in the top 20" sentinel as no mass', () => {
    const result = scoreLogprobs(
      first('True', 0, [
        { token: 'True', logprob: 0 },
        { token: 'False', logprob: -9999 },
      ]),
    )
    expect(result).toMatchObject({ ok: true, score: 1, pFalse: 0 })
  })

  it('reads only the first token, whatever follows', () => {
    const result = scoreLogprobs({
      content: [
        {
          token: 'False',
          logprob: Math.log(0.9),
          top_logprobs: [
            { token: 'False', logprob: Math.log(0.9) },
            { token: 'True', logprob: Math.log(0.1) },
          ],
        },
        { token: 'True', logprob: 0, top_logprobs: [{ token: 'True', logprob: 0 }] },
      ],
    })
    expect(result.ok && result.score).toBeCloseTo(0.1, 12)
  })

  it('bounds the score by the chosen token alone when top_logprobs is empty', () => {
    const onlyTrue = scoreLogprobs({
      content: [{ token: 'True', logprob: -0.004082317, top_logprobs: [] }],
    })
    expect(onlyTrue).toMatchObject({ ok: true, source: 'chosen-token', mass: 1 })
    expect(onlyTrue.ok && onlyTrue.score).toBeCloseTo(Math.exp(-0.004082317), 12)

    const onlyFalse = scoreLogprobs({
      content: [{ token: ' False', logprob: -0.008654992, top_logprobs: [] }],
    })
    expect(onlyFalse).toMatchObject({ ok: true, source: 'chosen-token' })
    expect(onlyFalse.ok && onlyFalse.score).toBeCloseTo(1 - Math.exp(-0.008654992), 12)
  })

  it('adds the chosen token when a server leaves it out of its alternatives', () => {
    const result = scoreLogprobs(
      first('True', Math.log(0.7), [{ token: 'False', logprob: Math.log(0.3) }]),
    )
    expect(result.ok && result.score).toBeCloseTo(0.7, 12)
  })

  it('gives no score when the first token is neither true nor false', () => {
    expect(
      scoreLogprobs(
        first('Maybe', -0.1, [
          { token: 'Maybe', logprob: -0.1 },
          { token: 'True', logprob: -3 },
        ]),
      ),
    ).toEqual({
      ok: false,
      reason: 'unexpected-token',
      token: 'Maybe',
    })
  })

  it('gives no-logprobs when there are none', () => {
    expect(scoreLogprobs(null)).toEqual({ ok: false, reason: 'no-logprobs' })
    expect(scoreLogprobs(undefined)).toEqual({ ok: false, reason: 'no-logprobs' })
    expect(scoreLogprobs({ content: null, refusal: null })).toEqual({
      ok: false,
      reason: 'no-logprobs',
    })
  })

  it('gives no-content-tokens for an empty token list, judge-refusal for a refusal', () => {
    expect(scoreLogprobs({ content: [] })).toEqual({ ok: false, reason: 'no-content-tokens' })
    expect(scoreLogprobs({ content: null, refusal: [{ token: 'I', logprob: 0 }] })).toEqual({
      ok: false,
      reason: 'judge-refusal',
    })
  })

  it.each([
    ['a string', 'True'],
    ['a number', 1],
    ['content that is not a list', { content: 'True' }],
    ['a token that is not a string', { content: [{ token: 1, logprob: 0 }] }],
    [
      'alternatives of the wrong shape',
      { content: [{ token: 'True', logprob: 0, top_logprobs: [null, 'False', { token: 2 }] }] },
    ],
    [
      'a logprob that is not a number',
      { content: [{ token: 'True', logprob: 'high', top_logprobs: [] }] },
    ],
  ])('does not throw on %s', (_, input) => {
    expect(() => scoreLogprobs(input)).not.toThrow()
  })
})

/** What a client that concatenates streamed chunks (LangChain does) ends up with. */
function assembleStream(
  chunks: Array<{
    choices: Array<{
      logprobs?: { content?: TokenLogprob[] | null; refusal?: TokenLogprob[] | null } | null
    }>
  }>,
) {
  let content: TokenLogprob[] | null = null
  let refusal: TokenLogprob[] | null = null
  for (const chunk of chunks) {
    const logprobs = chunk.choices[0]?.logprobs
    if (logprobs?.content) content = [...(content ?? []), ...logprobs.content]
    if (logprobs?.refusal) refusal = [...(refusal ?? []), ...logprobs.refusal]
  }
  return { content, refusal }
}

describe('scoreLogprobs on recorded OpenAI responses', () => {
  it.each([
    [
      'openai-dotnet TokenLogProbabilities (non-stream, top_logprobs=3)',
      dotnet.choices[0]!.logprobs,
      'The',
    ],
    ['openai-dotnet TokenLogProbabilities async', dotnetAsync.choices[0]!.logprobs, 'The'],
  ])('%s: first token is not an answer, so no score', (_, logprobs, token) => {
    expect(scoreLogprobs(logprobs)).toEqual({ ok: false, reason: 'unexpected-token', token })
  })

  it.each([
    ['openai-dotnet streaming', dotnetStream],
    ['openai-node content stream', nodeContentStream],
    ['openai-python content stream', pythonContentStream],
  ])('%s, assembled: no score, reason unexpected-token', (_, chunks) => {
    const logprobs = assembleStream(chunks as never)
    const result = scoreLogprobs(logprobs)
    expect(result).toMatchObject({ ok: false, reason: 'unexpected-token' })
    expect(!result.ok && result.token).toBe(logprobs.content![0]!.token)
  })

  it.each([
    ['openai-node refusal stream', nodeRefusalStream],
    ['openai-python refusal stream', pythonRefusalStream],
  ])('%s, assembled: a refusal has no content token (judge-refusal)', (_, chunks) => {
    expect(scoreLogprobs(assembleStream(chunks as never))).toEqual({
      ok: false,
      reason: 'judge-refusal',
    })
  })

  it('Responses API token list: read the same way', () => {
    const logprobs = (responsesApi.output[0] as { content: Array<{ logprobs: TokenLogprob[] }> })
      .content[0]!.logprobs
    expect(scoreLogprobs(logprobs)).toEqual({ ok: false, reason: 'unexpected-token', token: 'The' })
  })

  it('the recorded first tokens keep their alternatives: a True in them would have been read', () => {
    // Same recorded first token, with one alternative renamed to True: it must now be read.
    const recorded = dotnet.choices[0]!.logprobs.content[0]!
    const edited = {
      ...recorded,
      token: 'True',
      top_logprobs: recorded.top_logprobs.map((alternative, index) =>
        index === 0 ? { ...alternative, token: 'True' } : alternative,
      ),
    }
    const result = scoreLogprobs({ content: [edited] })
    expect(result).toMatchObject({ ok: true, score: 1 })
  })
})

describe('scoreLogprobs on faulty servers', () => {
  it('counts a token listed twice once', () => {
    const result = scoreLogprobs({
      content: [
        {
          token: 'True',
          logprob: Math.log(0.6),
          top_logprobs: [
            { token: 'True', logprob: Math.log(0.6) },
            { token: 'True', logprob: Math.log(0.6) },
            { token: 'False', logprob: Math.log(0.4) },
          ],
        },
      ],
    })
    expect(result).toMatchObject({
      ok: true,
      score: expect.closeTo(0.6, 12),
      pTrue: expect.closeTo(0.6, 12),
    })
  })

  it('keeps the proportion when the listed probabilities add up to more than 1', () => {
    const result = scoreLogprobs({
      content: [
        {
          token: 'True',
          logprob: 0,
          top_logprobs: [
            { token: 'True', logprob: 0 },
            { token: ' True', logprob: 0 },
            { token: 'False', logprob: 0 },
          ],
        },
      ],
    })
    expect(result).toMatchObject({
      ok: true,
      mass: 1,
      score: expect.closeTo(2 / 3, 12),
      pTrue: expect.closeTo(2 / 3, 12),
    })
  })
})
