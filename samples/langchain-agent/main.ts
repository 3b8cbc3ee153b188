/**
 * `npm run demo:agent`: the guarded LangChain agent of agent.ts answers the demo's three
 * questions, and prints for each the verdict, the score, how many times the agent's own model was
 * called, and the answer. A blocked question ends before the model writes an answer: one model
 * call (the one that chose to search), where an answered question takes two.
 *
 * With OPENAI_API_KEY set, the agent and the judge use the real model (OPENAI_BASE_URL, when set,
 * for any OpenAI-compatible server; AGENT_MODEL and JUDGE_MODEL name them). Without it, the local
 * stand-in answers both; it is not a model.
 */
import { BaseCallbackHandler } from '@langchain/core/callbacks/base'
import { JUDGE_RUN_NAME } from 'rag-guard/langchain'
import { STAND_IN_MODEL, STAND_IN_NOTICE, startStandInModel } from '../stand-in-model'
import { sampleAgent } from './agent'

/** The demo's three questions: answered by the documents, partly, not at all. */
export const QUESTIONS = [
  'What does a day pass cost?',
  'Are helmets required for adults?',
  'Which company manufactures the bikes?',
]

export interface DemoRow {
  question: string
  verdict: string
  score: string
  modelCalls: number
  answer: string
}

/** Asks each question of a fresh run of the agent. */
export async function runDemo(connection: {
  baseURL?: string
  apiKey?: string
  model?: string
  judgeModel?: string
}): Promise<DemoRow[]> {
  const agent = sampleAgent(connection)
  const rows: DemoRow[] = []
  for (const question of QUESTIONS) {
    let modelCalls = 0
    // Counts the agent's own model calls; the judge's call is a run of its own name.
    const counting = BaseCallbackHandler.fromMethods({
      handleChatModelStart(_model, _messages, _runId, _parent, _extra, _tags, _metadata, runName) {
        if (runName !== JUDGE_RUN_NAME) modelCalls += 1
      },
    })
    const result = await agent.invoke(
      { messages: [{ role: 'user', content: question }] },
      { callbacks: [counting] },
    )
    const { ragGuard } = result
    const answer = result.messages.at(-1)?.content
    rows.push({
      question,
      verdict: ragGuard?.verdict ?? '-',
      score: ragGuard?.score?.toFixed(4) ?? ragGuard?.reason ?? '-',
      modelCalls,
      answer: typeof answer === 'string' ? answer : JSON.stringify(answer),
    })
  }
  return rows
}

const cut = (text: string, width: number) => {
  const value = text.replace(/\s+/g, ' ')
  return value.length > width ? `${value.slice(0, width - 1)}…` : value
}

export function formatRows(rows: DemoRow[]): string {
  const header = ['question', 'verdict', 'score', 'model calls', 'answer']
  const cells = rows.map((row) => [
    row.question,
    row.verdict,
    row.score,
    String(row.modelCalls),
    cut(row.answer, 60),
  ])
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => row[column]!.length)),
  )
  const line = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd()
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line)].join(
    '\n',
  )
}

async function main(): Promise<void> {
  const apiKey = process.env.OPENAI_API_KEY
  if (apiKey) {
    const baseURL = process.env.OPENAI_BASE_URL
    console.log(`\nUsing the real model API${baseURL ? ` at ${baseURL}` : ''}.\n`)
    const rows = await runDemo({
      apiKey,
      baseURL,
      model: process.env.AGENT_MODEL,
      judgeModel: process.env.JUDGE_MODEL,
    })
    console.log(formatRows(rows))
    return
  }
  const standIn = await startStandInModel()
  try {
    console.log(
      `\nNo OPENAI_API_KEY: using the local stand-in model at ${standIn.baseURL}.\n${STAND_IN_NOTICE}\n`,
    )
    const rows = await runDemo({
      baseURL: standIn.baseURL,
      model: STAND_IN_MODEL,
      judgeModel: STAND_IN_MODEL,
    })
    console.log(formatRows(rows))
    console.log(
      '\nScores above come from the stand-in, not a model: they show the flow, not detection quality.',
    )
  } finally {
    await standIn.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(1)
  })
}
