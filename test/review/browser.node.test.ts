/**
 * Issue 18, end to end in a browser: the guard under `wrangler dev` with a local D1 store, six
 * decisions made by the Worker itself (guarded requests to a stub upstream and a stub judge, in
 * shadow mode), then Chromium — with JavaScript off, since the page needs none — signs in with
 * the operator token, labels two decisions by clicking, and the labels come out of the export,
 * which `rag-guard calibrate` fetches with the token.
 *
 * Chromium is Debian's (CHROMIUM_PATH, or `chromium` on the PATH), as in the report test.
 * `REVIEW_SCREENSHOTS=test/review/screenshots` also saves the screenshots docs/calibrate.md shows (review-page.png, the
 * list; review-decision.png, a decision).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../../src/cli/main'
import { applyMigrations, QUIET_WRANGLER_ENV, writeStoreConfig } from '../../samples/local-store'
import {
  scriptScenario,
  startOpenAIStub,
  type OpenAIStub,
  type StubStep,
} from '../stub/openai-stub'
import { freePort, launchChromium } from './chromium'

const ROOT = join(import.meta.dirname, '../..')

const judgeSays = (p: number): StubStep => ({
  token: p >= 0.5 ? 'True' : 'False',
  logprob: Math.log(Math.max(p, 1 - p)),
  topLogprobs: [
    { token: 'True', logprob: Math.log(p) },
    { token: 'False', logprob: Math.log(1 - p) },
  ].sort((a, b) => b.logprob - a.logprob),
})

/**
 * What the sample traffic asks, what the endpoint answers from which documents, and the judge's
 * P(True) for each check. The answers carry words no document has, so that only the
 * groundedness prompt (which holds the answer) matches their rule.
 */
const TRAFFIC = [
  {
    question: 'What does a day pass cost?',
    answer: 'A day pass is $12, with unlimited rides of up to 30 minutes.',
    mark: 'with unlimited rides of up to',
    sources: ['A day pass costs $12 and includes unlimited 30-minute rides.'],
    sufficiency: 0.982,
    groundedness: 0.975,
  },
  {
    question: 'Are helmets required for adults?',
    answer: 'Helmets are recommended for everyone, and required under 18.',
    mark: 'recommended for everyone',
    sources: ['Helmets are required for riders under 18.', 'Wear a helmet on every ride.'],
    sufficiency: 0.661,
    groundedness: 0.9,
  },
  {
    question: 'Which company manufactures the bikes?',
    answer: 'The bikes are built by VeloCity Works in Lyon.',
    mark: 'VeloCity Works',
    sources: ['Bikes are docked at 40 stations.', 'Every bike is inspected weekly.'],
    sufficiency: 0.065,
    groundedness: 0.08,
  },
  {
    question: 'What does a day pass cost for a family?',
    answer: 'A family day pass costs $30 for two adults and two children.',
    mark: 'two adults and two children',
    sources: ['A day pass costs $12 and includes unlimited 30-minute rides.'],
    sufficiency: 0.818,
    groundedness: 0.119,
  },
  {
    question: 'Can I take a bike on the train?',
    answer: 'Folding bikes may ride trains outside rush hour.',
    mark: 'outside rush hour',
    sources: ['Bikes can be returned to any station.'],
    sufficiency: 0.38,
    groundedness: 0.41,
  },
  {
    question: 'Where do I return a bike?',
    answer: 'You can return it at any of the stations.',
    mark: 'at any of the stations',
    sources: ['Bikes can be returned to any station.'],
    sufficiency: 0.97,
    groundedness: 0.96,
  },
]

let stub: OpenAIStub
let wrangler: ChildProcess | undefined
let workDir: string
let guardUrl: string
let browser: Browser | undefined
const output: string[] = []
const operatorToken = `operator-${randomBytes(16).toString('hex')}`
const callerToken = `caller-${randomBytes(16).toString('hex')}`

/** A screenshot of the whole page: non-empty, and saved for docs/calibrate.md when asked to. */
async function snapshot(page: Page, name: string): Promise<void> {
  const directory = process.env.REVIEW_SCREENSHOTS
  const image = await page.screenshot({
    fullPage: true,
    ...(directory ? { path: join(ROOT, directory, name) } : {}),
  })
  expect(image.byteLength).toBeGreaterThan(20_000)
}

async function waitUntilUp(url: string): Promise<void> {
  const deadline = Date.now() + 90_000
  while (Date.now() < deadline) {
    if (wrangler?.exitCode !== null) break
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) })
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  throw new Error(`wrangler dev did not start:\n${output.join('')}`)
}

/** Every stored decision's labels, from the export. */
async function exported(): Promise<Array<Record<string, unknown>>> {
  const response = await fetch(`${guardUrl}/_guard/labels.jsonl`, {
    headers: { authorization: `Bearer ${operatorToken}` },
  })
  expect(response.status).toBe(200)
  const text = await response.text()
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

beforeAll(async () => {
  stub = await startOpenAIStub()
  await scriptScenario(stub.origin, 'judge', {
    rules: [
      ...TRAFFIC.map((item) => ({ contains: item.mark, step: judgeSays(item.groundedness) })),
      ...TRAFFIC.map((item) => ({ contains: item.question, step: judgeSays(item.sufficiency) })),
    ],
    otherwise: judgeSays(0.5),
  })
  await scriptScenario(stub.origin, 'rag', {
    rules: TRAFFIC.map((item) => ({
      contains: JSON.stringify(item.question),
      step: { upstream: { json: { answer: item.answer, sources: item.sources } } },
    })),
    otherwise: { upstream: { status: 404, json: { error: 'unknown question' } } },
  })

  workDir = mkdtempSync(join(tmpdir(), 'rag-guard-review-'))
  const config = writeStoreConfig(ROOT, workDir)
  const state = join(workDir, 'state')
  await applyMigrations(ROOT, config, state)
  const secrets = join(workDir, 'secrets.env')
  writeFileSync(secrets, `GUARD_TOKENS=${callerToken}\nGUARD_OPERATOR_TOKENS=${operatorToken}\n`, {
    mode: 0o600,
  })
  const [port, inspector] = await Promise.all([freePort(), freePort()])
  const vars = {
    UPSTREAM_URL: `${stub.origin}/s/rag`,
    OPENAI_BASE_URL: `${stub.origin}/s/judge/v1`,
    GUARD_MODE: 'shadow',
    GUARD_CHECKS: 'sufficiency,groundedness',
    STORE_PASS_RATE: '1',
    STORE_CONTENT: 'true',
    CACHE_TTL_SECONDS: '0',
    LOG_DECISIONS: 'false',
  }
  wrangler = spawn(
    join(ROOT, 'node_modules/.bin/wrangler'),
    [
      'dev',
      '-c',
      config,
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(inspector),
      '--persist-to',
      state,
      '--env-file',
      secrets,
      '--show-interactive-dev-session=false',
      '--log-level',
      'warn',
      ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
    ],
    {
      cwd: ROOT,
      detached: true, // its own process group: stopping it stops workerd too
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...QUIET_WRANGLER_ENV, OPENAI_API_KEY: undefined },
    },
  )
  wrangler.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  wrangler.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  guardUrl = `http://127.0.0.1:${port}`
  await waitUntilUp(guardUrl)

  // The traffic, through the guard; each decision is stored after its response.
  for (const [index, item] of TRAFFIC.entries()) {
    const response = await fetch(`${guardUrl}/ask`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${index % 2 ? callerToken : operatorToken}`,
      },
      body: JSON.stringify({ question: item.question }),
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ answer: item.answer, sources: item.sources })
    // One millisecond apart at least, so that the list's order is the traffic's.
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await vi.waitFor(
    async () => {
      const page = await fetch(`${guardUrl}/_guard/review`, {
        headers: { authorization: `Bearer ${operatorToken}` },
      })
      expect((await page.text()).match(/<tr data-id=/g)).toHaveLength(TRAFFIC.length)
    },
    { timeout: 20_000, interval: 250 },
  )

  browser = await launchChromium()
}, 180_000)

afterAll(async () => {
  await browser?.close()
  if (wrangler?.pid && wrangler.exitCode === null) {
    const exited = new Promise((resolve) => wrangler!.once('exit', resolve))
    process.kill(-wrangler.pid, 'SIGTERM')
    await exited
  }
  await stub?.close()
  if (workDir) rmSync(workDir, { recursive: true, force: true })
}, 30_000)

describe('the review page in Chromium, from wrangler dev', () => {
  it('signs in, labels two decisions by clicking (no JavaScript), and finds them in the export and in calibrate', async () => {
    const context = await browser!.newContext({
      javaScriptEnabled: false,
      viewport: { width: 1280, height: 760 },
    })
    const page = await context.newPage()
    const requests: string[] = []
    page.on('request', (request) => requests.push(request.url()))

    // Not signed in: the sign-in form, with 401.
    const first = await page.goto(`${guardUrl}/_guard/review`)
    expect(first!.status()).toBe(401)
    await page.getByLabel('Operator token').fill(operatorToken)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(`${guardUrl}/_guard/review`)
    const rows = page.locator('table[data-table="decisions"] tbody tr')
    expect(await rows.count()).toBe(TRAFFIC.length)
    // Newest first: the last question asked is on top.
    expect(await page.locator('td', { hasText: '0.9700' }).count()).toBe(1)

    // The blocked "family" answer: the answer is hallucinated.
    const family = rows.filter({ hasText: '0.1190' })
    await family.getByRole('link').click()
    await expect.poll(() => page.locator('h3', { hasText: 'Answer' }).count()).toBe(1)
    expect(await page.locator('.panel p.text').first().textContent()).toBe(
      'What does a day pass cost for a family?',
    )
    await page.getByRole('button', { name: 'Answer hallucinated' }).click()
    await expect.poll(() => page.locator('[data-field="saved"]').count()).toBe(1)
    expect(
      await page.getByRole('button', { name: 'Answer hallucinated' }).getAttribute('aria-pressed'),
    ).toBe('true')
    await snapshot(page, 'review-decision.png')

    // The blocked "company" question: the documents do not say.
    await page.getByRole('link', { name: '← Back to the list' }).click()
    await rows.filter({ hasText: '0.0650' }).getByRole('link').click()
    await page.getByLabel('Note').fill('Nothing about the manufacturer in the documents.')
    await page.getByRole('button', { name: 'Context insufficient' }).click()
    await expect.poll(() => page.locator('[data-field="saved"]').count()).toBe(1)

    await page.getByRole('link', { name: '← Back to the list' }).click()
    expect(await page.locator('span.label', { hasText: 'hallucinated' }).count()).toBe(1)
    expect(await page.locator('span.label', { hasText: 'insufficient' }).count()).toBe(1)
    await snapshot(page, 'review-page.png')
    // Every request the page made went to the guard itself: no script, font or image elsewhere.
    expect(requests.every((url) => url.startsWith(`${guardUrl}/_guard/`))).toBe(true)
    await context.close()

    // The two labels, in the export.
    const lines = await exported()
    expect(lines).toHaveLength(2)
    /** The export line of a question, known by its sufficiency score (to six places). */
    const byQuestion = (mark: string) => {
      const item = TRAFFIC.find((traffic) => traffic.mark === mark)!
      return lines.find((line) => {
        const checks = line.checks as Record<string, { score?: number }>
        return Math.abs((checks.sufficiency?.score ?? -1) - item.sufficiency) < 1e-6
      })
    }
    expect(byQuestion('two adults and two children')).toMatchObject({
      grounded: false,
      verdict: 'block',
      check: 'groundedness',
    })
    expect(byQuestion('two adults and two children')).not.toHaveProperty('sufficient')
    expect(byQuestion('VeloCity Works')).toMatchObject({ sufficient: false, verdict: 'block' })
    expect(JSON.stringify(lines)).not.toContain('manufacturer')

    // And calibrate reads them from the guard, with the token from the environment.
    let printed = ''
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      printed += String(chunk)
      return true
    })
    process.env.RAG_GUARD_TOKEN = operatorToken
    try {
      expect(await main(['calibrate', `${guardUrl}/_guard/labels.jsonl`])).toBe(0)
    } finally {
      delete process.env.RAG_GUARD_TOKEN
      vi.restoreAllMocks()
    }
    expect(printed).toContain(
      'production labels: sufficiency 1 (0 sufficient, 1 insufficient) · groundedness 1 (0 grounded, 1 hallucinated)',
    )
    expect(printed).toContain('WARNING: only 1 production sufficiency labels are "insufficient"')
  }, 120_000)
})
