/**
 * `rag-guard eval --granularity sentence`: one judge call per answer, the line keeps the
 * answer-level (lowest) score that calibrate reads, and each sentence's score beside it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadScores } from '../../src/cli/calibrate'
import { readExamples } from '../../src/cli/data'
import { runEval } from '../../src/cli/eval'
import { main } from '../../src/cli/main'
import { createJudge } from '../../src/judge/judge'
import { PROMPT_VERSIONS, SENTENCE_PROMPT_VERSION } from '../../src/judge/prompt'
import { createJudgeRequests } from '../../src/judge/requests'
import { startOpenAIStub, type OpenAIStub, type StubLine } from '../stub/openai-stub'

const line = (p: number): StubLine => ({
  answer: p >= 0.5 ? 'True' : 'False',
  logprob: Math.log(Math.max(p, 1 - p)),
  topLogprobs: [
    { token: ' True', logprob: Math.log(p) },
    { token: ' False', logprob: Math.log(1 - p) },
  ],
})

describe('eval at sentence granularity', () => {
  let stub: OpenAIStub
  beforeAll(async () => {
    stub = await startOpenAIStub()
  })
  afterAll(async () => {
    await stub.close()
  })

  it('writes the lowest sentence’s score as the line’s score, each sentence’s beside it', async () => {
    const id = `sentences-${Math.random().toString(36).slice(2)}`
    await fetch(`${stub.origin}/__scenarios/${id}`, {
      method: 'PUT',
      body: JSON.stringify({ lines: [line(0.9), line(0.1)] }),
    })
    const judge = createJudge({ apiKey: 'k', baseURL: `${stub.origin}/s/${id}/v1`, maxRetries: 0 })
    const output = join(mkdtempSync(join(tmpdir(), 'rag-guard-sentences-')), 'scores.jsonl')
    const { examples } = readExamples(
      JSON.stringify({
        id: 'a',
        question: 'When?',
        context: 'It opened in 1900.',
        answer: 'It opened in 1900. It closed in 1950.',
        grounded: false,
      }),
      'x',
    )
    await runEval({
      examples,
      judge,
      checks: ['groundedness'],
      granularity: 'sentence',
      output,
      progress: { write: () => true },
    })
    const [written] = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((text) => JSON.parse(text) as Record<string, unknown>)
    expect(written).toMatchObject({
      id: 'a',
      check: 'groundedness',
      grounded: false,
      score: expect.closeTo(0.1, 9),
      promptVersion: SENTENCE_PROMPT_VERSION,
      granularity: 'sentence',
      sentences: [
        { sentence: 1, score: expect.closeTo(0.9, 9) },
        { sentence: 2, score: expect.closeTo(0.1, 9) },
      ],
    })
    const loaded = loadScores(
      readFileSync(output, 'utf8'),
      output,
      undefined,
      undefined,
      'groundedness',
    )
    expect(loaded.examples).toEqual([{ id: 'a', score: expect.closeTo(0.1, 9), sufficient: false }])
  })

  it('refuses a granularity it does not know', async () => {
    const errors: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((text) => {
      errors.push(String(text))
      return true
    })
    try {
      const data = join(mkdtempSync(join(tmpdir(), 'rag-guard-sentences-')), 'data.jsonl')
      writeFileSync(
        data,
        JSON.stringify({ question: 'q', context: 'c', answer: 'a', grounded: true }),
      )
      expect(
        await main(['eval', data, '--granularity', 'word', '--base-url', 'http://127.0.0.1:9/v1']),
      ).toBe(2)
      expect(errors.join('')).toContain('--granularity must be "answer" or "sentence", got "word"')
    } finally {
      spy.mockRestore()
    }
  })

  it('the Batch API asks and reads per sentence as the online judge does', () => {
    const requests = createJudgeRequests({ apiKey: 'k' }, 'sentence')
    expect(requests.promptVersions.groundedness).toBe(SENTENCE_PROMPT_VERSION)
    const answer = 'It opened in 1900. It closed in 1950.'
    const built = requests.request(
      { question: 'When?', context: 'It opened in 1900.', answer },
      'groundedness',
    )
    expect(built.ok).toBe(true)
    const body = (built as { body: Record<string, unknown> }).body
    expect(body.max_tokens).toBe(10)
    expect(JSON.stringify(body.messages)).toContain('Is each numbered sentence')
    const token = (text: string, p = 1) => ({ token: text, logprob: Math.log(p), top_logprobs: [] })
    const completion = {
      model: 'gpt-4o-mini',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: '1: True\n2: False' },
          logprobs: {
            content: [
              token('1'),
              token(':'),
              {
                ...token(' True', 0.9),
                top_logprobs: [
                  { token: ' True', logprob: Math.log(0.9) },
                  { token: ' False', logprob: Math.log(0.1) },
                ],
              },
              token('\n'),
              token('2'),
              token(':'),
              {
                ...token(' False', 0.8),
                top_logprobs: [
                  { token: ' False', logprob: Math.log(0.8) },
                  { token: ' True', logprob: Math.log(0.2) },
                ],
              },
            ],
          },
          finish_reason: 'stop',
        },
      ],
    }
    const result = requests.read('groundedness', completion, answer)
    expect(result).toMatchObject({
      ok: true,
      score: expect.closeTo(0.2, 9),
      granularity: 'sentence',
      promptVersion: SENTENCE_PROMPT_VERSION,
      sentences: [
        { sentence: 1, score: expect.closeTo(0.9, 9) },
        { sentence: 2, score: expect.closeTo(0.2, 9) },
      ],
    })
    // Sufficiency is asked as ever.
    expect(requests.promptVersions.sufficiency).toBe(PROMPT_VERSIONS.sufficiency)
  })
})
