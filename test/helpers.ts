import { env } from 'cloudflare:workers'
import type {
  RecordedRequest,
  StubScript,
  StubStep,
  StubTopLogprob,
  UpstreamReply,
} from './stub/openai-stub'

let counter = 0

export interface ScriptedModel {
  /** Base URL for an OpenAI client or the judge: calls to it follow the script. */
  baseURL: string
  /** Origin and prefix for a guard's UPSTREAM_URL: requests under it follow the script. */
  root: string
  /** Requests the stub received for this script, in order. */
  requests(): Promise<RecordedRequest[]>
}

/** Scripts the stub model server for one test and returns where to reach it. */
export async function scriptModel(script: StubScript): Promise<ScriptedModel> {
  const id = `t${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`
  const response = await fetch(`${env.STUB_ORIGIN}/__scenarios/${id}`, {
    method: 'PUT',
    body: JSON.stringify(script),
  })
  if (response.status !== 204) throw new Error(`scripting the stub failed: ${response.status}`)
  return {
    baseURL: `${env.STUB_ORIGIN}/s/${id}/v1`,
    root: `${env.STUB_ORIGIN}/s/${id}`,
    async requests() {
      const recorded = await fetch(`${env.STUB_ORIGIN}/__scenarios/${id}/requests`)
      return (await recorded.json()) as RecordedRequest[]
    },
  }
}

/**
 * A `top_logprobs` list consistent with one chosen True/False token: the chosen token, the other
 * answer with most of the remaining mass, and two unrelated tokens with the rest.
 */
export function binaryTopLogprobs(token: 'True' | 'False', logprob: number): StubTopLogprob[] {
  const other = token === 'True' ? 'False' : 'True'
  const rest = Math.max(1 - Math.exp(logprob), 1e-12)
  return [
    { token, logprob },
    { token: other, logprob: Math.log(rest * 0.98) },
    { token: 'Yes', logprob: Math.log(rest * 0.015) },
    { token: ' The', logprob: Math.log(rest * 0.005) },
  ]
}

/** Scripts the stub as an upstream RAG endpoint: one reply per call, the last one repeating. */
export const scriptUpstream = (...replies: UpstreamReply[]) =>
  scriptModel({ steps: replies.map((upstream) => ({ upstream })) })

/** How the judge prompt of each check can be told apart. */
export const SUFFICIENCY_PROMPT = 'contain enough information to answer the question'
export const GROUNDEDNESS_PROMPT = 'Is every statement of the answer supported'

/** A judge that answers each check with its own step (anything else: 500). */
export const judgeFor = (sufficiency: StubStep, groundedness: StubStep) => ({
  rules: [
    { contains: SUFFICIENCY_PROMPT, step: sufficiency },
    { contains: GROUNDEDNESS_PROMPT, step: groundedness },
  ],
  otherwise: { status: 500 },
})
