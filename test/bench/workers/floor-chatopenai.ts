/** Benchmark floor: one judge call through LangChain's `ChatOpenAI`, with the guard's settings. */
import { ChatOpenAI } from '@langchain/openai'
import { floorWorker, type FloorEnv } from './floor'

let chatModel: ChatOpenAI | undefined

function model(env: FloorEnv): ChatOpenAI {
  chatModel ??= new ChatOpenAI({
    model: env.JUDGE_MODEL ?? 'gpt-4o-mini',
    apiKey: env.OPENAI_API_KEY,
    temperature: 0,
    maxTokens: 1,
    logprobs: true,
    topLogprobs: Number(env.JUDGE_TOP_LOGPROBS ?? 20),
    streaming: false,
    useResponsesApi: false,
    maxRetries: 0,
    configuration: { baseURL: env.OPENAI_BASE_URL },
  })
  return chatModel
}

export default floorWorker(async (env, messages) => {
  const message = await model(env).invoke(messages)
  return message.response_metadata?.logprobs
})
