/**
 * The judge's replies, as the stub model server plays them: a plain answer with P(True) = p
 * (`judgeSays`), a per-sentence reply (`judgeLines`), and below, replies a judge gives to a
 * request's data rather than because its infrastructure failed, each
 * with the reason code the guard gives it: a document can make the judge answer another token,
 * refuse, trip the content filter, drop its logprobs, or split its answer below the minimum mass.
 * Shared by the Worker's, LangChain's and the property tests of issue 24, finding 2.
 */
import type { StubLine, StubStep } from './stub/openai-stub'

/** The judge's answer: P(True) = p, optionally after a delay. */
export function judgeSays(p: number, extra: StubStep = {}): StubStep {
  return {
    token: p >= 0.5 ? 'True' : 'False',
    logprob: Math.log(Math.max(p, 1 - p)),
    topLogprobs: [
      { token: 'True', logprob: Math.log(p) },
      { token: 'False', logprob: Math.log(1 - p) },
    ].sort((a, b) => b.logprob - a.logprob),
    ...extra,
  }
}

/** One line of a per-sentence reply (`i: True`): P(True) = p at its answer token. */
export function judgeLine(p: number): StubLine {
  return {
    answer: p >= 0.5 ? 'True' : 'False',
    logprob: Math.log(Math.max(p, 1 - p)),
    topLogprobs: [
      { token: ' True', logprob: Math.log(p) },
      { token: ' False', logprob: Math.log(1 - p) },
    ].sort((a, b) => b.logprob - a.logprob),
  }
}

/** The judge's per-sentence reply: one line per sentence, P(True) of each in order. */
export const judgeLines = (...ps: number[]): StubStep => ({ lines: ps.map(judgeLine) })

/** A chat completion the judge API sends, with this first choice. */
export const judgeReply = (choice: Record<string, unknown>): StubStep => ({
  json: {
    id: 'chatcmpl-judge',
    object: 'chat.completion',
    created: 1_760_000_000,
    model: 'judge-model',
    choices: [{ index: 0, ...choice }],
    usage: { prompt_tokens: 40, completion_tokens: 1, total_tokens: 41 },
  },
})

/** Replies the request's data can cause: what it is, the reply, its reason code. */
export const DATA_REPLIES: ReadonlyArray<readonly [string, StubStep, string]> = [
  [
    'a first token other than True or False',
    { token: 'Maybe', topLogprobs: [{ token: 'Maybe', logprob: 0 }] },
    'unexpected-token',
  ],
  [
    'True and False covering too little of the first token',
    {
      token: 'True',
      logprob: Math.log(0.3),
      topLogprobs: [
        { token: 'Yes', logprob: Math.log(0.6) },
        { token: 'True', logprob: Math.log(0.3) },
        { token: 'False', logprob: Math.log(0.02) },
      ],
    },
    'low-answer-mass',
  ],
  ['a reply without logprobs', { token: 'True', noLogprobs: true }, 'no-logprobs'],
  [
    'a reply cut by the content filter',
    judgeReply({
      message: { role: 'assistant', content: '' },
      logprobs: null,
      finish_reason: 'content_filter',
    }),
    'judge-content-filter',
  ],
  [
    'a refusal',
    judgeReply({
      message: { role: 'assistant', content: null, refusal: "I'm sorry, I can't help with that." },
      logprobs: {
        content: null,
        refusal: [{ token: "I'm", logprob: -0.01, bytes: null, top_logprobs: [] }],
      },
      finish_reason: 'stop',
    }),
    'judge-refusal',
  ],
]
