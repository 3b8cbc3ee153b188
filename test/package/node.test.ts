/**
 * The package in a Node project with the latest LangChain: a plain ESM app (no loader, no
 * TypeScript) running `createAgent` with `ragGuardMiddleware`, the `rag-guard` command from the
 * tarball, the types under a standard Node tsconfig, and every TypeScript example of README.md and docs/
 * compiled against the installed package.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import {
  FALLBACK,
  JUDGE_SCRIPT,
  ROOT,
  makeProject,
  must,
  run,
  script,
  typeCheck,
  writeFiles,
  compileExamples,
  readmeExamples,
} from './helpers'

const stub = inject('stubOrigin')
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string
}

// A user's agent, as plain JavaScript: one retriever tool, the guard judging what it found.
const AGENT_APP = `import { ChatOpenAI } from '@langchain/openai'
import { Document } from '@langchain/core/documents'
import { createAgent, tool } from 'langchain'
import { ragGuardMiddleware } from 'rag-guard/langchain'
import * as z from 'zod'

const base = process.env.STUB_ORIGIN
const search = tool(
  async ({ query }) => ['A day pass costs $12.', [new Document({ pageContent: 'A day pass costs $12.' })]],
  {
    name: 'search_documents',
    description: 'Searches the documents.',
    schema: z.object({ query: z.string() }),
    responseFormat: 'content_and_artifact',
  },
)
const judge = new ChatOpenAI({
  model: 'judge',
  apiKey: 'test',
  configuration: { baseURL: base + '/s/pkg-judge/v1' },
  logprobs: true,
  topLogprobs: 20,
  maxTokens: 1,
  temperature: 0,
})
const agent = createAgent({
  model: new ChatOpenAI({ model: 'agent', apiKey: 'test', configuration: { baseURL: base + '/s/pkg-agent/v1' } }),
  tools: [search],
  middleware: [ragGuardMiddleware({ judge: { chatModel: judge }, blockBelow: 0.2, flagBelow: 0.5 })],
})
for (const question of process.argv.slice(2)) {
  const result = await agent.invoke({ messages: [{ role: 'user', content: question }] })
  console.log(JSON.stringify({ verdict: result.ragGuard?.verdict, answer: result.messages.at(-1)?.content }))
}
`

// A standard Node tsconfig: NodeNext, ES2022, @types/node, declarations checked.
const NODE_TSCONFIG = JSON.stringify({
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022'],
    types: ['node'],
    strict: true,
    skipLibCheck: false,
    noEmit: true,
  },
  files: ['uses.ts'],
})

const NODE_USES = `import { createJudge, ragGuard, readAnnotation, type GuardDecision } from 'rag-guard'
import { ragGuardMiddleware, ragGuardRunnable, RagGuardBlockedError } from 'rag-guard/langchain'

export const judge = createJudge({ model: 'gpt-4o-mini', apiKey: 'k' })
export const guard = ragGuard({ judge, question: '/q', context: '/c' })
export const middleware = ragGuardMiddleware({ judge })
export const verdict = readAnnotation('')
export type Decision = GuardDecision
export { ragGuardRunnable, RagGuardBlockedError }
`

const compilerOptions = {
  target: 'ES2022',
  module: 'ES2022',
  moduleResolution: 'Bundler',
  strict: true,
  skipLibCheck: false,
  noEmit: true,
}

let dir: string

beforeAll(async () => {
  dir = await makeProject(join(inject('workdir'), 'node'), [
    inject('tarball'),
    'hono@4',
    'langchain@latest',
    '@langchain/core@latest',
    '@langchain/openai@latest',
    '@langchain/anthropic@latest',
    'openai@latest',
    '@types/node@24',
    '@cloudflare/workers-types@latest',
  ])
  await script(stub, 'pkg-judge', JUDGE_SCRIPT)
  // The agent's model: search first; once the tool has answered, the answer.
  await script(stub, 'pkg-agent', {
    rules: [{ contains: '"role":"tool"', step: { content: 'A day pass costs $12.' } }],
    otherwise: { toolCalls: [{ name: 'search_documents', arguments: { query: 'day pass' } }] },
  })
})

describe('a Node project with LangChain', () => {
  it('a plain ESM app runs createAgent with ragGuardMiddleware: pass, and block before the answer', async () => {
    writeFiles(dir, { 'agent.mjs': AGENT_APP })
    const { stdout } = await must(
      process.execPath,
      ['agent.mjs', 'What does a day pass cost?', 'Which company manufactures the bikes?'],
      { cwd: dir, env: { ...process.env, STUB_ORIGIN: stub } },
    )
    expect(
      stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual([
      { verdict: 'pass', answer: 'A day pass costs $12.' },
      { verdict: 'block', answer: FALLBACK },
    ])
  })

  it('the rag-guard command: --help, --version, and eval on three rows', async () => {
    const bin = join(dir, 'node_modules/.bin/rag-guard')
    const help = await must(bin, ['--help'], { cwd: dir })
    expect(help.stdout).toContain('rag-guard eval <data.jsonl>')
    expect((await must(bin, ['--version'], { cwd: dir })).stdout).toBe(`${version}\n`)
    const rows = [
      {
        id: 'a',
        question: 'What does a day pass cost?',
        context: ['A day pass costs $12.'],
        sufficient: true,
      },
      {
        id: 'b',
        question: 'How long is a ride?',
        context: ['Rides last 45 minutes.'],
        sufficient: true,
      },
      {
        id: 'c',
        question: 'Which company manufactures the bikes?',
        context: ['A day pass costs $12.'],
        sufficient: false,
      },
    ]
    writeFiles(dir, { 'rows.jsonl': rows.map((row) => JSON.stringify(row)).join('\n') + '\n' })
    const evaluated = await run(bin, ['eval', 'rows.jsonl', '--out', 'scores.jsonl'], {
      cwd: dir,
      env: {
        ...process.env,
        OPENAI_API_KEY: 'test',
        OPENAI_BASE_URL: `${stub}/s/pkg-judge/v1`,
        JUDGE_MODEL: 'judge',
      },
    })
    expect(evaluated.code, evaluated.stderr).toBe(0)
    const scores = readFileSync(join(dir, 'scores.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; score: number })
    expect(scores.map(({ id, score }) => [id, Number(score.toFixed(2))])).toEqual([
      ['a', 0.98],
      ['b', 0.98],
      ['c', 0.05],
    ])
  })

  it('type-checks with a standard Node tsconfig (NodeNext, @types/node, skipLibCheck false)', async () => {
    writeFiles(dir, { 'uses.ts': NODE_USES, 'tsconfig.node.json': NODE_TSCONFIG })
    expect(await typeCheck(dir, 'tsconfig.node.json')).toBe('')
  })

  it('the LangChain and Node examples of README.md and docs/ compile against the installed package', async () => {
    // skipLibCheck here: @langchain/anthropic's own declarations do not match the newest
    // @anthropic-ai/sdk; the package's declarations are checked without it above.
    const files = readmeExamples('node')
    expect(files.length).toBeGreaterThanOrEqual(6)
    expect(
      await compileExamples(dir, files, {
        ...compilerOptions,
        lib: ['ES2022'],
        types: ['node'],
        skipLibCheck: true,
      }),
    ).toBe('')
  })
})
