/**
 * Benchmark floors: the least a guard must do for a request whose context is in its body —
 * read the body, build the judge prompt (the project's own prompt module), make one judge call
 * with the guard's settings (logprobs, JUDGE_TOP_LOGPROBS alternatives, one token,
 * temperature 0), score it (the project's scoring module), and forward the request to the
 * upstream in parallel. No cache, no decision log, no streaming, no input validation.
 * floor-chatopenai.ts makes the judge call through LangChain's `ChatOpenAI`, as the guard does;
 * floor-fetch.ts makes it as one plain `fetch`.
 */
import { buildJudgePrompt } from '../../../src/judge/prompt'
import { scoreLogprobs } from '../../../src/judge/scoring'

export interface FloorEnv {
  UPSTREAM_URL: string
  OPENAI_BASE_URL: string
  OPENAI_API_KEY: string
  JUDGE_MODEL?: string
  JUDGE_TOP_LOGPROBS?: string
}

/** One judge call: the chat messages in, `choices[0].logprobs` out. */
export type JudgeCall = (env: FloorEnv, messages: Array<[string, string]>) => Promise<unknown>

export function floorWorker(judgeCall: JudgeCall): ExportedHandler<FloorEnv> {
  return {
    async fetch(request, env) {
      const text = await request.text()
      const body = JSON.parse(text) as { question: string; context: string[] }
      const { messages } = buildJudgePrompt(body.question, body.context)
      const prompt = messages.map(({ role, content }): [string, string] => [role, content])
      const judged = judgeCall(env, prompt).then(scoreLogprobs)
      const incoming = new URL(request.url)
      const target = new URL(env.UPSTREAM_URL)
      target.pathname = `${target.pathname.replace(/\/+$/, '')}${incoming.pathname}`
      const [score, upstream] = await Promise.all([
        judged,
        fetch(target.href, { method: 'POST', headers: request.headers, body: text }),
      ])
      const response = new Response(upstream.body, upstream)
      response.headers.set('x-rag-guard-score', score.ok ? score.score.toFixed(4) : 'none')
      return response
    },
  }
}
