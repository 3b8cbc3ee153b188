/** Benchmark floor: the same judge call as one plain `fetch` to the chat completions API. */
import { floorWorker } from './floor'

export default floorWorker(async (env, messages) => {
  const response = await fetch(`${env.OPENAI_BASE_URL.replace(/\/+$/, '')}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.OPENAI_API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: env.JUDGE_MODEL ?? 'gpt-4o-mini',
      messages: messages.map(([role, content]) => ({ role, content })),
      temperature: 0,
      max_tokens: 1,
      logprobs: true,
      top_logprobs: Number(env.JUDGE_TOP_LOGPROBS ?? 20),
      stream: false,
    }),
  })
  if (!response.ok) throw new Error(`the judge answered ${response.status}`)
  const completion = (await response.json()) as { choices?: Array<{ logprobs?: unknown }> }
  return completion.choices?.[0]?.logprobs
})
