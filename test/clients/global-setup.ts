/**
 * What the client tests talk to, started once for the `clients` project:
 *
 * - the OpenAI-protocol stub (test/stub/openai-stub.ts), playing three parts:
 *     `judge`    the guard's judge, whose P(True) is scripted by the question it is asked about;
 *     `chat-up`  an OpenAI-compatible RAG endpoint (the openai-chat upstream): the answer streamed
 *                one word per chunk, `stream_options.include_usage` honoured, JSON answers
 *                gzip-compressed when the request accepts gzip;
 *     `gen`      the chat model of the sample RAG service;
 * - the sample RAG service (samples/rag-service), built as it deploys and run in workerd: the
 *   LangServe upstream (`/rag/invoke`, `/rag/stream`);
 * - the guard Worker, built as it deploys (`wrangler deploy --dry-run`) and run in workerd through
 *   Miniflare, once per mode and upstream: enforce + hold, enforce + annotate, shadow.
 *
 * Everything listens on 127.0.0.1, port 0, and is closed in teardown.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { judgeLine, judgeSays } from '../judge-replies'
import { scriptScenario, startOpenAIStub } from '../stub/openai-stub'
import { buildBundle, QUIET_ENV, ROOT, startLocalWorker } from '../support/local-worker'
import { ANSWER, API_KEY, QUESTIONS, REPAIR_ANSWER, type GuardConfig, type Rig } from './rig'

declare module 'vitest' {
  export interface ProvidedContext {
    clientRig: Rig
  }
}

function buildSampleService(outdir: string): string {
  const built = spawnSync(
    join(ROOT, 'node_modules/.bin/wrangler'),
    ['deploy', '--dry-run', '--outdir', outdir, '--config', 'samples/rag-service/wrangler.toml'],
    { cwd: ROOT, env: QUIET_ENV, encoding: 'utf8' },
  )
  if (built.status !== 0) throw new Error(`building the sample service failed:\n${built.stderr}`)
  return join(outdir, 'worker.js')
}

const CONFIGS: Record<GuardConfig, Record<string, string>> = {
  hold: { GUARD_MODE: 'enforce', STREAM_MODE: 'hold' },
  annotate: { GUARD_MODE: 'enforce', STREAM_MODE: 'annotate' },
  shadow: { GUARD_MODE: 'shadow' },
}

export default async function setup(project: TestProject) {
  const closers: Array<() => Promise<void>> = []
  const work = mkdtempSync(join(tmpdir(), 'rag-guard-clients-'))
  closers.push(async () => rmSync(work, { recursive: true, force: true }))
  const teardown = async () => {
    for (const close of closers.reverse()) await close().catch(() => {})
  }
  try {
    const stub = await startOpenAIStub()
    closers.push(() => stub.close())
    await scriptScenario(stub.origin, 'judge', {
      rules: [
        { contains: QUESTIONS.pass, step: judgeSays(0.95) },
        { contains: QUESTIONS.flag, step: judgeSays(0.5) },
        { contains: QUESTIONS.block, step: judgeSays(0.02) },
      ],
      otherwise: judgeSays(0.95),
    })
    // Like a web server in front of a model API: JSON answers gzip-compressed when the client accepts it.
    await scriptScenario(stub.origin, 'chat-up', { content: ANSWER, gzip: true })
    await scriptScenario(stub.origin, 'gen', { content: ANSWER })
    // Repair: an endpoint whose answer has an unsupported second sentence, and a judge that says so
    // line by line (P(True) 0.95, 0.02, 0.95 at each line's answer token).
    await scriptScenario(stub.origin, 'chat-up-3', { content: REPAIR_ANSWER, gzip: true })
    await scriptScenario(stub.origin, 'judge-lines', {
      lines: [0.95, 0.02, 0.95].map(judgeLine),
    })

    const sample = await startLocalWorker(buildSampleService(join(work, 'sample')), {
      OPENAI_BASE_URL: `${stub.origin}/s/gen/v1`,
      OPENAI_API_KEY: 'sample-service-key',
      GENERATION_MODEL: 'gen-model',
    })
    closers.push(() => sample.dispose())

    const guard = buildBundle(join(work, 'guard'))
    const upstreams = {
      chat: {
        UPSTREAM_URL: `${stub.origin}/s/chat-up`,
        GUARD_ROUTES: JSON.stringify([{ path: '/v1/chat/completions', format: 'openai-chat' }]),
      },
      langserve: {
        UPSTREAM_URL: sample.url,
        GUARD_ROUTES: JSON.stringify([{ path: '/rag', format: 'langserve' }]),
      },
    }
    const guards = {} as Rig['guards']
    for (const [upstream, upstreamBindings] of Object.entries(upstreams)) {
      for (const [config, modeBindings] of Object.entries(CONFIGS)) {
        const worker = await startLocalWorker(guard.path, {
          ...upstreamBindings,
          ...modeBindings,
          OPENAI_BASE_URL: `${stub.origin}/s/judge/v1`,
          OPENAI_API_KEY: 'judge-key',
          JUDGE_MAX_RETRIES: '0',
          JUDGE_TIMEOUT_MS: '10000',
          BLOCK_BELOW: '0.2',
          FLAG_BELOW: '0.8',
          CACHE_TTL_SECONDS: '0',
          LOG_DECISIONS: 'false',
          // The clients send API_KEY as their key: here, an operator's token.
          GUARD_AUTH: 'token',
          GUARD_OPERATOR_TOKENS: API_KEY,
        })
        closers.push(() => worker.dispose())
        guards[upstream as keyof Rig['guards']] ??= {} as Rig['guards']['chat']
        guards[upstream as keyof Rig['guards']][config as GuardConfig] = worker.url
      }
    }
    const repair = await startLocalWorker(guard.path, {
      UPSTREAM_URL: `${stub.origin}/s/chat-up-3`,
      GUARD_ROUTES: JSON.stringify([{ path: '/v1/chat/completions', format: 'openai-chat' }]),
      GUARD_MODE: 'enforce',
      STREAM_MODE: 'hold',
      GUARD_CHECKS: 'groundedness',
      GROUNDEDNESS_GRANULARITY: 'sentence',
      ON_UNGROUNDED: 'repair',
      OPENAI_BASE_URL: `${stub.origin}/s/judge-lines/v1`,
      OPENAI_API_KEY: 'judge-key',
      JUDGE_MAX_RETRIES: '0',
      JUDGE_TIMEOUT_MS: '10000',
      CACHE_TTL_SECONDS: '0',
      LOG_DECISIONS: 'false',
      GUARD_AUTH: 'token',
      GUARD_OPERATOR_TOKENS: API_KEY,
    })
    closers.push(() => repair.dispose())
    project.provide('clientRig', {
      repairGuard: repair.url,
      stubOrigin: stub.origin,
      chatEndpoint: `${stub.origin}/s/chat-up`,
      langserveEndpoint: sample.url,
      guards,
    })
  } catch (error) {
    await teardown()
    throw error
  }
  return teardown
}
