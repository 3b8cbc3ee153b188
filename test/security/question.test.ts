/**
 * Issue 12, finding 9: judge what the upstream answers. An openai-chat endpoint answers the
 * whole conversation, so the judge gets the earlier turns (up to JUDGE_HISTORY_TURNS, inside the
 * prompt's data delimiters) with the last user message; a LangServe input with more than one of
 * input/question/query is ambiguous and refused.
 */
import { describe, expect, it } from 'vitest'
import { judgeSays } from '../guard-helpers'
import {
  calls,
  CHAT_COMPLETION,
  expectRefused,
  judgePrompt,
  LANGSERVE_OUTPUT,
  post,
  secureGuard,
} from './helpers'

/**
 * The prompt's random boundary: the longest run of 16 or more hex digits that occurs more than
 * once (it opens and closes every data block).
 */
function boundary(prompt: string): string {
  const candidates = [...new Set(prompt.match(/[0-9a-f]{16,}/gi) ?? [])]
    .filter((candidate) => prompt.split(candidate).length > 2)
    .sort((a, b) => b.length - a.length)
  expect(candidates.length, 'a repeated random boundary in the judge prompt').toBeGreaterThan(0)
  return candidates[0]!
}

/** Whether `text` sits between the first and the last occurrence of the data boundary. */
function insideData(prompt: string, text: string): boolean {
  const mark = boundary(prompt)
  const at = prompt.indexOf(text)
  return at > prompt.indexOf(mark) && at + text.length < prompt.lastIndexOf(mark)
}

const chat = (messages: Array<{ role: string; content: string }>) =>
  post({ model: 'rag-model', messages })

describe('finding 9: the judge sees the conversation the upstream answers', () => {
  it('earlier user and assistant turns appear in the judge prompt, inside the data block, with the last user message', async () => {
    const { send, judge } = await secureGuard({ json: CHAT_COMPLETION }, judgeSays(0.9))
    const response = await send(
      '/v1/chat/completions',
      chat([
        { role: 'system', content: 'Velo City bikes are built by Acme Cycles.' },
        { role: 'user', content: 'EARLIER-QUESTION: tell me about the Brompton folding bike' },
        { role: 'assistant', content: 'EARLIER-ANSWER: Brompton is made in London' },
        { role: 'user', content: 'LAST-QUESTION: who manufactures them?' },
      ]),
      'operator',
    )
    expect(response.status).toBe(200)
    const prompt = await judgePrompt(judge)
    for (const turn of [
      'EARLIER-QUESTION: tell me about the Brompton folding bike',
      'EARLIER-ANSWER: Brompton is made in London',
      'LAST-QUESTION: who manufactures them?',
    ]) {
      expect(prompt).toContain(turn)
      expect(insideData(prompt, turn), `${turn} inside the data block`).toBe(true)
    }
  })

  it('only the most recent earlier turns are kept (JUDGE_HISTORY_TURNS, default 4)', async () => {
    const { send, judge } = await secureGuard({ json: CHAT_COMPLETION }, judgeSays(0.9))
    const history = Array.from({ length: 6 }, (_, index) => [
      { role: 'user', content: `TURN-${index + 1}-QUESTION` },
      { role: 'assistant', content: `TURN-${index + 1}-ANSWER` },
    ]).flat()
    const response = await send(
      '/v1/chat/completions',
      chat([
        { role: 'system', content: 'Velo City bikes are built by Acme Cycles.' },
        ...history,
        { role: 'user', content: 'LAST-QUESTION: who manufactures them?' },
      ]),
      'operator',
    )
    expect(response.status).toBe(200)
    const prompt = await judgePrompt(judge)
    expect(prompt).toContain('LAST-QUESTION: who manufactures them?')
    // The most recent ones, however a turn is counted (a message, or a question and its answer).
    for (const kept of ['TURN-5-QUESTION', 'TURN-5-ANSWER', 'TURN-6-QUESTION', 'TURN-6-ANSWER'])
      expect(prompt).toContain(kept)
    for (const dropped of ['TURN-1-QUESTION', 'TURN-1-ANSWER', 'TURN-2-QUESTION', 'TURN-2-ANSWER'])
      expect(prompt).not.toContain(dropped)
  })

  it('JUDGE_HISTORY_TURNS=0 sends the last user message alone', async () => {
    const { send, judge } = await secureGuard({ json: CHAT_COMPLETION }, judgeSays(0.9), {
      JUDGE_HISTORY_TURNS: '0',
    })
    const response = await send(
      '/v1/chat/completions',
      chat([
        { role: 'system', content: 'Velo City bikes are built by Acme Cycles.' },
        { role: 'user', content: 'EARLIER-QUESTION' },
        { role: 'assistant', content: 'EARLIER-ANSWER' },
        { role: 'user', content: 'LAST-QUESTION' },
      ]),
      'operator',
    )
    expect(response.status).toBe(200)
    const prompt = await judgePrompt(judge)
    expect(prompt).toContain('LAST-QUESTION')
    expect(prompt).not.toContain('EARLIER-QUESTION')
    expect(prompt).not.toContain('EARLIER-ANSWER')
  })
})

describe('finding 9: a LangServe input that names two questions is ambiguous', () => {
  it.each([
    ['input and question', { input: 'What colour are the bikes?', question: 'Who makes them?' }],
    ['question and query', { question: 'What colour are the bikes?', query: 'Who makes them?' }],
    ['all three', { input: 'a?', question: 'b?', query: 'c?' }],
  ])(
    'an input object with %s is refused before the upstream (400 ambiguous-question)',
    async (_, input) => {
      const { send, upstream, judge } = await secureGuard(
        { json: LANGSERVE_OUTPUT },
        judgeSays(0.9),
      )
      const response = await send('/rag/invoke', post({ input }), 'operator')
      await expectRefused(response, 400, 'ambiguous-question')
      expect(await calls(upstream)).toBe(0)
      expect(await calls(judge)).toBe(0)
    },
  )

  it('an input object with one of them is judged on it', async () => {
    const { send, judge } = await secureGuard({ json: LANGSERVE_OUTPUT }, judgeSays(0.9))
    const response = await send(
      '/rag/invoke',
      post({ input: { query: 'Who makes them?', k: 4 } }),
      'operator',
    )
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await judgePrompt(judge)).toContain('Who makes them?')
  })
})
