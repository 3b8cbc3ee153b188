/**
 * Issue 29, the overview page in a browser: the guard under `wrangler dev` with a local D1 store
 * that holds 30 days of rollups (test/review/seed.ts, through `wrangler d1 execute`) and labeled
 * decisions, plus traffic the Worker itself guards now (a stub upstream and a stub judge, shadow
 * mode, both checks). Chromium — with JavaScript off, since the page needs none — signs in,
 * opens the overview, reads a chart's numbers (a `<details>`), and follows a bar into the
 * review list.
 *
 * `REVIEW_SCREENSHOTS=test/review/screenshots` also saves a screenshot of each chart, which the
 * docs/calibrate.md shows (overview-verdicts.png, overview-scores.png, overview-latency.png,
 * overview-unjudged.png).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Locator } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  applyMigrations,
  executeSqlFile,
  QUIET_WRANGLER_ENV,
  writeStoreConfig,
} from '../../samples/local-store'
import {
  scriptScenario,
  startOpenAIStub,
  type OpenAIStub,
  type StubStep,
} from '../stub/openai-stub'
import { freePort, launchChromium } from './chromium'
import { seedRows, seedSql } from './seed'

const ROOT = join(import.meta.dirname, '../..')
const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

const judgeSays = (p: number): StubStep => ({
  token: p >= 0.5 ? 'True' : 'False',
  logprob: Math.log(Math.max(p, 1 - p)),
  topLogprobs: [
    { token: 'True', logprob: Math.log(p) },
    { token: 'False', logprob: Math.log(1 - p) },
  ].sort((a, b) => b.logprob - a.logprob),
})

/** What is asked now, through the guard: the judge's P(True) by question, for both checks. */
const TRAFFIC = [
  { question: 'What does a day pass cost?', score: 0.97 },
  { question: 'Are helmets required for adults?', score: 0.66 },
  { question: 'Which company manufactures the bikes?', score: 0.06 },
  { question: 'Where do I return a bike?', score: 0.93 },
]

let stub: OpenAIStub
let wrangler: ChildProcess | undefined
let workDir: string
let guardUrl: string
let browser: Browser | undefined
const output: string[] = []
const operatorToken = `operator-${randomBytes(16).toString('hex')}`

/** A screenshot of one chart's panel: small, and saved for docs/calibrate.md when asked to. */
async function snapshot(panel: Locator, name: string): Promise<void> {
  const directory = process.env.REVIEW_SCREENSHOTS
  const image = await panel.screenshot({
    ...(directory ? { path: join(ROOT, directory, name) } : {}),
  })
  expect(image.byteLength).toBeGreaterThan(10_000)
  expect(image.byteLength).toBeLessThan(200_000)
}

/**
 * Labeled decisions over the 30 days: "sufficient" mostly at high sufficiency scores,
 * "insufficient" mostly at low ones, and some of each where the thresholds cut.
 */
function labeledDecisionsSql(end: number): string {
  const rows: string[] = []
  const reviews: string[] = []
  for (let index = 0; index < 120; index++) {
    const sufficient = index % 3 !== 0
    // Deterministic spread: sufficient ones from 0.45 up, insufficient ones from 0 to 0.7.
    const step = ((index * 37) % 100) / 100
    const score = sufficient ? 0.45 + step * 0.55 : step * 0.7
    const id = index.toString(16).padStart(32, '0')
    const time = end - ((index * 6 + 1) % (29 * 24)) * HOUR_MS
    const verdict = score < 0.2 ? 'block' : score < 0.8 ? 'flag' : 'pass'
    rows.push(
      `('${id}', ${time}, 'seed-${index}', '/ask', 'shadow', '${verdict}', 'sufficiency', ${score.toFixed(4)}, ${score.toFixed(4)}, NULL, NULL, 1, NULL, NULL, 'not-stored', NULL, NULL, NULL, '{}')`,
    )
    reviews.push(`('${id}', ${sufficient ? 1 : 0}, NULL, NULL, 'token:seed', ${time + HOUR_MS})`)
  }
  return [
    `INSERT INTO decisions VALUES ${rows.join(', ')};`,
    `INSERT INTO reviews VALUES ${reviews.join(', ')};`,
  ].join('\n')
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

beforeAll(async () => {
  stub = await startOpenAIStub()
  await scriptScenario(stub.origin, 'judge', {
    rules: TRAFFIC.map((item) => ({ contains: item.question, step: judgeSays(item.score) })),
    otherwise: judgeSays(0.9),
  })
  await scriptScenario(stub.origin, 'rag', {
    rules: TRAFFIC.map((item) => ({
      contains: JSON.stringify(item.question),
      step: { upstream: { json: { answer: 'An answer.', sources: ['A document.'] } } },
    })),
    otherwise: { upstream: { status: 404, json: { error: 'unknown question' } } },
  })

  workDir = mkdtempSync(join(tmpdir(), 'rag-guard-overview-'))
  const config = writeStoreConfig(ROOT, workDir)
  const state = join(workDir, 'state')
  await applyMigrations(ROOT, config, state)
  // 30 days up to the start of this hour, every third hour (standing for three): this hour holds
  // only the traffic below.
  const end = Math.floor(Date.now() / HOUR_MS) * HOUR_MS
  const seed = join(workDir, 'seed.sql')
  writeFileSync(
    seed,
    `${seedSql(
      seedRows({
        first: end - 30 * DAY_MS,
        end,
        changeAt: end - 10 * DAY_MS,
        everyHours: 3,
      }),
    )}\n${labeledDecisionsSql(end)}\n`,
  )
  await executeSqlFile(ROOT, config, state, seed)

  const secrets = join(workDir, 'secrets.env')
  writeFileSync(secrets, `GUARD_OPERATOR_TOKENS=${operatorToken}\n`, { mode: 0o600 })
  const [port, inspector] = await Promise.all([freePort(), freePort()])
  const vars = {
    UPSTREAM_URL: `${stub.origin}/s/rag`,
    OPENAI_BASE_URL: `${stub.origin}/s/judge/v1`,
    GUARD_MODE: 'shadow',
    GUARD_CHECKS: 'sufficiency,groundedness',
    STORE_PASS_RATE: '1',
    CACHE_TTL_SECONDS: '0',
    LOG_DECISIONS: 'false',
    ROLLUP_FLUSH_SECONDS: '0',
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

  for (const item of TRAFFIC) {
    const response = await fetch(`${guardUrl}/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${operatorToken}` },
      body: JSON.stringify({ question: item.question }),
    })
    expect(response.status).toBe(200)
  }
  // The rollups of this hour: the traffic above, once its isolate has written them.
  await vi.waitFor(
    async () => {
      const page = await fetch(`${guardUrl}/_guard/overview?window=24h`, {
        headers: { authorization: `Bearer ${operatorToken}` },
      })
      const html = await page.text()
      const table = html.slice(html.indexOf('data-table="verdicts"'))
      const last = [
        ...table.slice(0, table.indexOf('</tbody>')).matchAll(/<tr>(.*?)<\/tr>/gs),
      ].pop()
      const cells = [...(last?.[1] ?? '').matchAll(/<td[^>]*>(.*?)<\/td>/gs)]
      expect(cells.pop()?.[1]).toBe(String(TRAFFIC.length))
    },
    { timeout: 20_000, interval: 250 },
  )
  browser = await launchChromium()
}, 240_000)

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

describe('the overview page in Chromium, from wrangler dev', () => {
  it('signs in, shows 30 days of charts without JavaScript, opens their numbers, and links into the list', async () => {
    const context = await browser!.newContext({
      javaScriptEnabled: false,
      viewport: { width: 1000, height: 800 },
    })
    const page = await context.newPage()
    const requests: string[] = []
    page.on('request', (request) => requests.push(request.url()))

    const first = await page.goto(`${guardUrl}/_guard/overview`)
    expect(first!.status()).toBe(401)
    await page.getByLabel('Operator token').fill(operatorToken)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(`${guardUrl}/_guard/review`)
    await page.getByRole('link', { name: 'Overview' }).click()
    await page.getByLabel('Window').selectOption('30d')
    await page.getByRole('button', { name: 'Show' }).click()
    await page.waitForURL(/window=30d/)
    expect(await page.locator('h2').textContent()).toBe('Overview: all traffic, last 30 days')

    // The change of judge model, marked on the charts over time.
    expect(await page.locator('ol.changes li').allTextContents()).toEqual([
      expect.stringContaining('judge model gpt-4.1-mini → gpt-4o-mini'),
      expect.stringContaining('judge model gpt-4.1-mini → gpt-4o-mini'),
    ])
    const verdicts = page.locator('[data-chart="verdicts"]')
    expect(await verdicts.locator('svg rect.s-shadow-block').count()).toBeGreaterThan(25)
    // Both changes (one per check) at the same hour: one line, numbered "1, 2".
    expect(await verdicts.locator('svg text.change-label').allTextContents()).toEqual(['1, 2'])
    await snapshot(verdicts, 'overview-verdicts.png')

    // The sufficiency histogram, its thresholds, and the labeled decisions under it.
    const scores = page.locator('[data-chart="scores-sufficiency"]')
    expect(await scores.locator('svg line.threshold').count()).toBe(4)
    expect(await scores.getByText('sufficiency: labeled decisions').count()).toBe(1)
    await snapshot(scores, 'overview-scores.png')
    await snapshot(page.locator('[data-chart="latency"]'), 'overview-latency.png')
    await snapshot(page.locator('[data-chart="unjudged"]'), 'overview-unjudged.png')

    // The numbers, one click away (a <details>: no script needed).
    const table = verdicts.locator('table[data-table="verdicts"]')
    expect(await table.isVisible()).toBe(false)
    await verdicts.getByText('Numbers').click()
    expect(await table.isVisible()).toBe(true)
    expect(await table.locator('tbody tr').count()).toBe(30)

    // A bar of blocks leads to the review list, filtered to its verdict and day. (The last one
    // drawn: in the first hours of a UTC day, today's bar holds only this test's own traffic, and
    // its block link has no height to click.)
    await verdicts
      .locator('svg a')
      .filter({ has: page.locator('rect.s-shadow-block'), visible: true })
      .last()
      .click()
    await page.waitForURL(/\/_guard\/review\?.*verdict=block/)
    expect(await page.locator('h2').textContent()).toBe('Decisions, newest first')
    expect(await page.locator('table[data-table="decisions"] tbody tr').count()).toBeGreaterThan(0)
    // Every request the page made went to the guard itself: no script, font or image elsewhere.
    expect(requests.every((url) => url.startsWith(`${guardUrl}/_guard/`))).toBe(true)
    await context.close()
  }, 120_000)
})
