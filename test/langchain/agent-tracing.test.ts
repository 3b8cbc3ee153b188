/**
 * The agent's callbacks and streams see the judge call. LangChain finds the run a middleware hook
 * runs in through AsyncLocalStorage: on by itself in Node; in a Worker (nodejs_compat) once
 * `@langchain/core/context` is imported, as here.
 */
import '@langchain/core/context'
import { RunCollectorCallbackHandler } from '@langchain/core/tracers/run_collector'
import { createAgent } from 'langchain'
import { describe, expect, it } from 'vitest'
import { JUDGE_RUN_NAME, ragGuardMiddleware } from '../../src/langchain'
import { scriptModel } from '../helpers'
import {
  ANSWER,
  answerModel,
  answers,
  callsTool,
  FALLBACK,
  judgeModel,
  judgeSays,
  QUESTION,
  searchDocs,
} from './helpers'

type Run = RunCollectorCallbackHandler['tracedRuns'][number]

async function tracedAgent(p: number) {
  const model = await scriptModel({ steps: [callsTool(), answers()] })
  const judge = await scriptModel(judgeSays(p))
  const agent = createAgent({
    model: answerModel(model),
    tools: [searchDocs],
    middleware: [ragGuardMiddleware({ judge: { chatModel: judgeModel(judge) } })],
  })
  return { agent, model, judge }
}

/** Every run of a traced tree, each with the names of the runs above it. */
function flatten(run: Run, above: string[] = []): Array<{ run: Run; above: string[] }> {
  return [
    { run, above },
    ...(run.child_runs ?? []).flatMap((child) => flatten(child, [...above, run.name])),
  ]
}

describe('ragGuardMiddleware: callbacks and streams', () => {
  it('the judge call is a child run of the agent’s run, under the middleware’s node', async () => {
    const { agent } = await tracedAgent(0.95)
    const collector = new RunCollectorCallbackHandler()
    await agent.invoke(
      { messages: [{ role: 'user', content: QUESTION }] },
      { callbacks: [collector] },
    )
    expect(collector.tracedRuns).toHaveLength(1)
    const runs = flatten(collector.tracedRuns[0]!)
    const judging = runs.filter(({ run }) => run.name === JUDGE_RUN_NAME)
    expect(judging).toHaveLength(1)
    expect(judging[0]!.run.run_type).toBe('llm')
    expect(judging[0]!.above[0]).toBe(collector.tracedRuns[0]!.name)
    expect(judging[0]!.above.at(-1)).toBe('RagGuardMiddleware.before_model')
    expect(JSON.stringify(judging[0]!.run.outputs)).toContain('True')
  })

  it('streamed messages carry the answer, never the judge’s token', async () => {
    const { agent } = await tracedAgent(0.95)
    const texts: string[] = []
    for await (const [chunk] of await agent.stream(
      { messages: [{ role: 'user', content: QUESTION }] },
      { streamMode: 'messages' },
    )) {
      if (chunk.type === 'ai' && typeof chunk.content === 'string') texts.push(chunk.content)
    }
    expect(texts.join('')).toContain(ANSWER)
    expect(texts).not.toContain('True')
  })

  it('a blocked run streams the fallback as its last message, and no answer tokens', async () => {
    const { agent, model } = await tracedAgent(0.02)
    const updates: string[] = []
    for await (const chunk of await agent.stream(
      { messages: [{ role: 'user', content: QUESTION }] },
      { streamMode: 'values' },
    )) {
      const last = chunk.messages.at(-1)
      if (last?.type === 'ai' && typeof last.content === 'string') updates.push(last.content)
    }
    expect(updates.at(-1)).toBe(FALLBACK)
    expect(updates).not.toContain(ANSWER)
    expect(await model.requests()).toHaveLength(1)
  })
})
