/**
 * The LangChain agent sample (`npm run demo:agent`) in Node, where LangChain users run it: the
 * guarded agent against the stand-in model gives the demo's three verdicts, and a blocked
 * question never reaches the agent's model for an answer.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RunCollectorCallbackHandler } from '@langchain/core/tracers/run_collector'
import { JUDGE_RUN_NAME } from '../../src/langchain'
import { sampleAgent } from '../../samples/langchain-agent/agent'
import { runDemo } from '../../samples/langchain-agent/main'
import { STAND_IN_MODEL, startStandInModel, type StandInServer } from '../../samples/stand-in-model'

const root = join(import.meta.dirname, '../..')
let standIn: StandInServer

beforeAll(async () => {
  standIn = await startStandInModel()
})
afterAll(() => standIn.close())

describe('the LangChain agent sample', () => {
  it('passes, flags and blocks the three questions; the blocked one gets no answer-generation call', async () => {
    const rows = await runDemo({
      baseURL: standIn.baseURL,
      model: STAND_IN_MODEL,
      judgeModel: STAND_IN_MODEL,
    })
    expect(rows.map(({ verdict, modelCalls }) => [verdict, modelCalls])).toEqual([
      ['pass', 2],
      ['flag', 2],
      ['block', 1],
    ])
    expect(rows[0]!.answer).toMatch(/^A day pass costs \$12/)
    expect(rows[2]!.answer).toBe("I can't answer that reliably from the information I have.")
  })

  it('in Node the judge call is a child run of the agent’s run, with nothing to set up', async () => {
    const agent = sampleAgent({
      baseURL: standIn.baseURL,
      model: STAND_IN_MODEL,
      judgeModel: STAND_IN_MODEL,
    })
    const collector = new RunCollectorCallbackHandler()
    await agent.invoke(
      { messages: [{ role: 'user', content: 'What does a day pass cost?' }] },
      { callbacks: [collector] },
    )
    type Run = (typeof collector.tracedRuns)[number]
    const names = (run: Run): string[] => [run.name, ...(run.child_runs ?? []).flatMap(names)]
    expect(collector.tracedRuns).toHaveLength(1)
    expect(names(collector.tracedRuns[0]!).filter((name) => name === JUDGE_RUN_NAME)).toHaveLength(
      1,
    )
  })

  it('npm run demo:agent prints the three verdicts', async () => {
    const env = { ...process.env }
    delete env.OPENAI_API_KEY
    const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'demo:agent'], {
      cwd: root,
      env,
      timeout: 60_000,
    })
    const verdicts = stdout
      .split('\n')
      .map((line) => line.match(/\?\s+(pass|flag|block)\s+(\d\.\d{4})\s+(\d)\s/)?.slice(1))
      .filter(Boolean)
    expect(verdicts).toEqual([
      ['pass', '0.9820', '2'],
      ['flag', '0.6608', '2'],
      ['block', '0.0650', '1'],
    ])
    expect(stdout).toContain('NOT a language model')
  })
})
