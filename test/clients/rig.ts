/**
 * The fixed material of the client tests, shared by their global setup and the tests: the
 * questions whose verdicts the stub judge is scripted with, the answer the upstreams give, and
 * the servers the setup started.
 */
export type GuardConfig = 'hold' | 'annotate' | 'shadow'

export interface Rig {
  stubOrigin: string
  /** The openai-chat endpoint alone (the stub as an OpenAI-compatible RAG endpoint); `/v1` is its API. */
  chatEndpoint: string
  /** The sample RAG service alone (LangServe routes under `/rag`). */
  langserveEndpoint: string
  /** The guard in front of each endpoint, per configuration. */
  guards: Record<'chat' | 'langserve', Record<GuardConfig, string>>
  /**
   * Groundedness per sentence with repair (enforce, hold), in front of an openai-chat endpoint
   * that answers {@link REPAIR_ANSWER}; the judge finds its second sentence unsupported.
   */
  repairGuard: string
}

/** Three sentences, the second not in the documents (the judge scores it 0.02). */
export const REPAIR_SENTENCES = [
  'A day pass costs $12.',
  'Bikes are made by Velocity Works in Portland.',
  'It includes unlimited rides of up to 45 minutes.',
] as const
export const REPAIR_ANSWER = REPAIR_SENTENCES.join(' ')

/** The judge answers P(True) by the question it is asked about (thresholds: block < 0.2 ≤ flag < 0.8). */
export const QUESTIONS = {
  pass: 'What does a day pass cost?',
  flag: 'Are helmets required for adults?',
  block: 'Which company manufactures the bikes?',
} as const

export const CASES = [
  { verdict: 'pass', question: QUESTIONS.pass, score: 0.95 },
  { verdict: 'flag', question: QUESTIONS.flag, score: 0.5 },
  { verdict: 'block', question: QUESTIONS.block, score: 0.02 },
] as const

export type Case = (typeof CASES)[number]

/** What every upstream answers (streamed one word per chunk). */
export const ANSWER = 'A day pass costs $12 and includes unlimited rides of up to 45 minutes.'

/** The openai-chat route reads its context from the system message. */
export const DOCUMENTS =
  'Documents:\nA day pass costs $12 and includes unlimited rides of up to 45 minutes each for 24 hours.\nRiders under 18 must wear a helmet.'

export const FALLBACK = "I can't answer that reliably from the information I have."

/** Sets every `created` timestamp to 0: the stub stamps each answer with the current second. */
export function withoutCreated<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutCreated) as T
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        key,
        key === 'created' && typeof inner === 'number' ? 0 : withoutCreated(inner),
      ]),
    ) as T
  return value
}

/** Raw SSE text with the per-answer values (timestamps, run ids) made equal. */
export const normalizedBytes = (text: string) =>
  text
    .replace(/"created":\d+/g, '"created":0')
    .replace(/"run_id":"[0-9a-f-]{36}"/g, '"run_id":"<run>"')

/**
 * What every client sends as its API key. The guards of the client tests take it as an operator
 * token (`Authorization: Bearer …`, as the openai SDK sends its key), so the clients pass the
 * caller check and see the details; the endpoints alone ignore it.
 */
export const API_KEY = 'client-operator-token-0123456789'
