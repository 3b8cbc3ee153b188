/**
 * What the benchmark sends and what its stub upstream and stub judge answer: retrieved
 * documents of a given total size, judge answers with 20 alternatives, and the upstream's
 * JSON answers and SSE streams (openai-chat and LangServe), all seeded.
 */
import type { StubStep } from '../../stub/openai-stub'
import { generator } from './random'

const WORDS = (
  'the harbor district station closes during storm warnings issued by city council ferry ' +
  'service resumes after inspection of the pier schedule weekend passengers tickets refund ' +
  'policy applies to cancelled crossings within seven days of travel buses replace trains on ' +
  'the coastal line while bridge repairs continue through spring season opening hours library ' +
  'museum archive records show that the lighthouse was rebuilt in 1911 after fire damaged ' +
  'its lantern room keepers lived on site until automation'
).split(' ')
/** Real retrieved text is not all ASCII: a few typographic and accented words. */
const UNICODE_WORDS = ['café', 'naïve', '—', 'don’t', '“closed”', 'Zürich', '€12']

/** Documents of about `documentBytes` characters each, `totalBytes` in all. */
export function documents(seed: number, totalBytes: number, documentBytes = 2048): string[] {
  const random = generator(seed)
  const count = Math.max(1, Math.round(totalBytes / documentBytes))
  return Array.from({ length: count }, (_, index) => {
    let text = `Document ${index + 1}.`
    while (text.length < documentBytes) {
      const word =
        random() < 0.01
          ? UNICODE_WORDS[Math.floor(random() * UNICODE_WORDS.length)]!
          : WORDS[Math.floor(random() * WORDS.length)]!
      text += (random() < 0.08 ? '. ' : ' ') + word
    }
    return text.slice(0, documentBytes)
  })
}

/** A judge answer with 20 alternatives for the first token, as gpt-4o-mini sends: P(True) ≈ 0.9. */
export function judgeStep(delayMs: number): StubStep {
  const alternatives: Array<[string, number]> = [
    ['True', 0.86],
    ['False', 0.09],
    [' True', 0.015],
    ['true', 0.01],
    [' False', 0.006],
    ['TRUE', 0.003],
    ['false', 0.002],
    ['Yes', 0.0015],
    ['T', 0.001],
    ['No', 0.0008],
    ['True.', 0.0006],
    ['"', 0.0005],
    ['Tr', 0.0004],
    [' true', 0.0003],
    ['FALSE', 0.0002],
    ['The', 0.0001],
    ['**', 0.00008],
    ['Fal', 0.00006],
    ['Suff', 0.00004],
    ['\n', 0.00002],
  ]
  return {
    delayMs,
    token: 'True',
    logprob: Math.log(0.86),
    topLogprobs: alternatives.map(([token, p]) => ({ token, logprob: Math.log(p) })),
  }
}

export const JSON_ANSWER = {
  answer: 'The harbor district stations close during storm warnings issued by the city.',
  sources: [],
}

/** An upstream JSON answer after `delayMs`. */
export const jsonUpstream = (delayMs: number): StubStep => ({
  upstream: { json: JSON_ANSWER, delayMs },
})

const chatChunk = (delta: object, finish: string | null) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-bench0000000000000000000000',
    object: 'chat.completion.chunk',
    created: 1764460800,
    model: 'gpt-4o-mini-2024-07-18',
    system_fingerprint: 'fp_bench0000',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  })}\n\n`

/**
 * An openai-chat stream of exactly `events` events: the role chunk, content chunks of one word,
 * the finish chunk, and `data: [DONE]`. Each event is its own write, `gapMs` apart, so each
 * reaches the Worker as its own chunk, as a model's tokens do.
 */
export function chatStream(events: number, firstByteMs: number, gapMs = 1): StubStep {
  const words = Math.max(0, events - 3)
  const chunks = [
    chatChunk({ role: 'assistant', content: '' }, null),
    ...Array.from({ length: words }, (_, index) =>
      chatChunk({ content: `${WORDS[index % WORDS.length]} ` }, null),
    ),
    chatChunk({}, 'stop'),
    'data: [DONE]\n\n',
  ].slice(0, Math.max(events, 1))
  return {
    upstream: {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
      chunks,
      chunkDelayMs: gapMs,
      delayMs: firstByteMs,
    },
  }
}

/**
 * A LangServe `/stream` of a retrieval chain: `metadata`, one `data` event carrying the
 * documents (`contextBytes` of text), answer parts word by word, `end`. The context event is
 * one write, as LangServe sends it.
 */
export function langServeStream(contextBytes: number, firstByteMs: number, seed: number): StubStep {
  const context = documents(seed, contextBytes).map((text, index) => ({
    page_content: text,
    metadata: { source: `harbor-${index}.md` },
    type: 'Document',
  }))
  const chunks = [
    `event: metadata\ndata: ${JSON.stringify({ run_id: '1f6a8d0e-bench-4b1e-9a34-000000000001' })}\n\n`,
    `event: data\ndata: ${JSON.stringify({ input: 'When do harbor stations close?' })}\n\n`,
    `event: data\ndata: ${JSON.stringify({ context })}\n\n`,
    ...'They close during storm warnings issued by the city.'
      .split(' ')
      .map((word) => `event: data\ndata: ${JSON.stringify({ answer: `${word} ` })}\n\n`),
    'event: end\n\n',
  ]
  return {
    upstream: {
      headers: { 'content-type': 'text/event-stream' },
      chunks,
      chunkDelayMs: 1,
      delayMs: firstByteMs,
    },
  }
}
