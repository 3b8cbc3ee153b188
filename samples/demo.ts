/**
 * `npm run demo`: the sample RAG service and RAG Guard in front of it, both in local workerd
 * (wrangler dev), then a few requests in each endpoint format whose answers come back passed,
 * flagged and blocked.
 *
 * With OPENAI_API_KEY set, both the sample service and the judge use the real model (and
 * OPENAI_BASE_URL, when set, for any OpenAI-compatible server). Without it, a local stand-in that
 * speaks the same protocol answers both; it is not a model.
 *
 *   npm run demo                           run, print the examples, keep serving until Ctrl-C
 *   npm run demo -- --once                 run, print the examples, stop
 *   npm run demo -- --stream-mode annotate streamed answers annotated instead of held
 *
 * The guard keeps its decisions in a local D1 database (the schema of src/review/migrations/ applied with
 * `wrangler d1 migrations apply --local`), and the demo prints the review page's address (not
 * with --once, which stops the Workers and removes their database).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { applyMigrations, reviewPageNote, tryItNote, writeStoreConfig } from './local-store'
import {
  STAND_IN_MODEL,
  STAND_IN_NOTICE,
  startStandInModel,
  type StandInServer,
} from './stand-in-model'

const root = join(import.meta.dirname, '..')
const once = process.argv.includes('--once')
const streamModeAt = process.argv.indexOf('--stream-mode')
const streamMode = streamModeAt === -1 ? 'hold' : process.argv[streamModeAt + 1]
if (streamMode !== 'hold' && streamMode !== 'annotate') {
  console.error('--stream-mode is "hold" or "annotate"')
  process.exit(2)
}

const QUESTIONS = [
  'What does a day pass cost?', // answered by the documents
  'Are helmets required for adults?', // only partly: the documents cover riders under 18
  'Which company manufactures the bikes?', // not in the documents
  // Answerable, but the stand-in's answer adds a detail no document holds: sufficiency passes,
  // groundedness blocks.
  'What does a day pass cost for a family?',
]

const FORMATS = [
  {
    format: 'json',
    path: '/ask',
    body: (question: string) => ({ question }),
    answer: (body: any) => body.answer ?? body.error?.message,
  },
  {
    format: 'openai-chat',
    path: '/v1/chat/completions',
    body: (question: string) => ({
      model: 'sample-rag',
      messages: [{ role: 'user', content: question }],
    }),
    answer: (body: any) => body.choices?.[0]?.message?.content,
  },
  {
    format: 'langserve',
    path: '/rag/invoke',
    body: (question: string) => ({ input: { input: question } }),
    answer: (body: any) => body.output?.answer,
  },
]

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

const children: ChildProcess[] = []
const logs = new Map<string, string[]>()

function startWrangler(name: string, args: string[]): ChildProcess {
  const child = spawn(
    join(root, 'node_modules/.bin/wrangler'),
    [
      'dev',
      '--ip',
      '127.0.0.1',
      '--show-interactive-dev-session=false',
      '--log-level',
      'warn',
      ...args,
    ],
    {
      cwd: root,
      detached: true, // its own process group, so stopping it stops workerd too
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_HIDE_BANNER: 'true',
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        OPENAI_API_KEY: undefined,
      },
    },
  )
  const lines: string[] = []
  logs.set(name, lines)
  child.stdout?.on('data', (chunk: Buffer) => lines.push(chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => lines.push(chunk.toString()))
  children.push(child)
  return child
}

async function waitUntilUp(name: string, child: ChildProcess, url: string): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) })
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  throw new Error(`${name} did not start:\n${logs.get(name)?.join('') ?? ''}`)
}

let standIn: StandInServer | undefined
let workDir: string | undefined

function stop(): void {
  for (const child of children) {
    try {
      if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  void standIn?.close()
  if (workDir) rmSync(workDir, { recursive: true, force: true })
}

/** Each check's score (or reason), from `x-rag-guard-scores`; a `*` marks the check that decided. */
function scores(headers: Headers): string {
  const decided = headers.get('x-rag-guard-check')
  const parts = Object.fromEntries(
    (headers.get('x-rag-guard-scores') ?? '')
      .split(', ')
      .filter(Boolean)
      .map((part) => part.split('=') as [string, string]),
  )
  const show = (check: string) =>
    `${parts[check] ?? (headers.get('x-rag-guard-reason') || '-')}${decided === check && headers.get('x-rag-guard-verdict') !== 'pass' ? '*' : ''}`
  return `${show('sufficiency')} / ${show('groundedness')}`
}

const cut = (text: unknown, width: number) => {
  const value = String(text ?? '').replace(/\s+/g, ' ')
  return value.length > width ? `${value.slice(0, width - 1)}…` : value
}

async function main(): Promise<void> {
  const apiKey = process.env.OPENAI_API_KEY
  let baseURL = process.env.OPENAI_BASE_URL
  let judgeModel = process.env.JUDGE_MODEL ?? 'gpt-4o-mini'
  if (!apiKey) {
    standIn = await startStandInModel()
    baseURL = standIn.baseURL
    judgeModel = STAND_IN_MODEL
    console.log(
      `\nNo OPENAI_API_KEY: using the local stand-in model at ${baseURL}.\n${STAND_IN_NOTICE}\n`,
    )
  } else {
    console.log(
      `\nUsing the real model API${baseURL ? ` at ${baseURL}` : ''} (judge: ${judgeModel}).\n`,
    )
  }

  // Secrets go through a private env file, never on a command line. The guard asks callers for
  // a token (wrangler.toml: GUARD_AUTH = "token"): one for a caller, one for an operator, who
  // also sees the scores.
  workDir = mkdtempSync(join(tmpdir(), 'rag-guard-demo-'))
  const callerToken = `demo-caller-${randomBytes(16).toString('hex')}`
  const operatorToken = `demo-operator-${randomBytes(16).toString('hex')}`
  const envFile = join(workDir, 'secrets.env')
  writeFileSync(
    envFile,
    [
      ...(apiKey ? [`OPENAI_API_KEY=${JSON.stringify(apiKey)}`] : []),
      `GUARD_TOKENS=${callerToken}`,
      `GUARD_OPERATOR_TOKENS=${operatorToken}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  )
  const shared = [
    '--env-file',
    envFile,
    ...(baseURL ? ['--var', `OPENAI_BASE_URL:${baseURL}`] : []),
  ]

  const [servicePort, serviceInspector, guardPort, guardInspector] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ])
  // The guard's decision store: wrangler.toml with a local D1 bound as GUARD_DB, its schema
  // applied (quietly, while the sample service starts).
  const guardConfig = writeStoreConfig(root, workDir)
  const guardState = join(workDir, 'guard-state')
  const migrated = applyMigrations(root, guardConfig, guardState)
  const service = startWrangler('sample RAG service', [
    '-c',
    'samples/rag-service/wrangler.toml',
    '--port',
    String(servicePort),
    '--inspector-port',
    String(serviceInspector),
    '--persist-to',
    join(workDir, 'service-state'),
    ...shared,
    ...(standIn ? ['--var', `GENERATION_MODEL:${STAND_IN_MODEL}`] : []),
  ])
  await migrated
  const guard = startWrangler('RAG Guard', [
    '-c',
    guardConfig,
    '--port',
    String(guardPort),
    '--inspector-port',
    String(guardInspector),
    '--persist-to',
    guardState,
    ...shared,
    '--var',
    `UPSTREAM_URL:http://127.0.0.1:${servicePort}`,
    '--var',
    'GUARD_MODE:enforce',
    '--var',
    `STREAM_MODE:${streamMode}`,
    '--var',
    'GUARD_CHECKS:sufficiency,groundedness',
    '--var',
    `JUDGE_MODEL:${judgeModel}`,
    // Every decision stored, with its text: the sample data is no one's.
    '--var',
    'STORE_PASS_RATE:1',
    '--var',
    'STORE_CONTENT:true',
  ])
  const serviceUrl = `http://127.0.0.1:${servicePort}`
  const guardUrl = `http://127.0.0.1:${guardPort}`
  await Promise.all([
    waitUntilUp('sample RAG service', service, serviceUrl),
    waitUntilUp('RAG Guard', guard, guardUrl),
  ])
  console.log(
    `Sample RAG service: ${serviceUrl}   RAG Guard in front of it: ${guardUrl} (enforce, checks: sufficiency and groundedness, block below 0.2, flag below 0.8, streams: ${streamMode})\n`,
  )

  const rows: string[][] = []
  for (const { format, path, body, answer } of FORMATS) {
    for (const question of QUESTIONS) {
      const response = await fetch(`${guardUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${operatorToken}` },
        body: JSON.stringify(body(question)),
      })
      const text = await response.text()
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = { error: { message: text } }
      }
      rows.push([
        format,
        question,
        `${response.headers.get('x-rag-guard-verdict') ?? '-'}${response.status === 200 ? '' : ` (${response.status})`}`,
        scores(response.headers),
        cut(answer(parsed), 60),
      ])
    }
  }
  const header = [
    'format',
    'question',
    'verdict',
    'sufficiency / groundedness',
    'answer the client got',
  ]
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  )
  const line = (cells: string[]) =>
    cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')
  console.log(line(header))
  console.log(line(widths.map((width) => '-'.repeat(width))))
  for (const row of rows) console.log(line(row))

  if (standIn)
    console.log(
      `\nScores above come from the stand-in, not a model: they show the flow, not detection quality.`,
    )
  console.log(`\n${reviewPageNote(guardUrl, operatorToken, once)}`)
  if (once) return
  console.log(`\n${tryItNote(guardUrl, callerToken, operatorToken)}`)
  await new Promise<void>((resolve) => process.once('SIGINT', resolve))
}

process.once('exit', stop)
process.once('SIGTERM', () => process.exit(143))
main()
  .then(() => process.exit(0))
  .catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(1)
  })
