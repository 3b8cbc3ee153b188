/**
 * Issue 18, `rag-guard calibrate` on production labels: it reads the review page's export from a
 * file or fetches it with an operator token from the environment, calibrates one check at a time,
 * counts the production labels per check and says when they are too few.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../../src/cli/main'
import { labelsNeeded, tooFewLabels } from '../../src/cli/production'

const TOKEN = 'operator-token-4a6c8e0b2d1f3957'

/** Export lines: sufficiency scores that separate the labels, groundedness on a few. */
function exportLines(count: number, groundedEvery = 0): string {
  return Array.from({ length: count }, (_, index) => {
    const sufficient = index % 2 === 0
    const sufficiency = sufficient ? 0.6 + (index % 40) / 100 : (index % 40) / 100
    return JSON.stringify({
      message: 'rag-guard decision',
      time: '2026-11-24T10:00:00.000Z',
      requestId: `req-${index}`,
      route: '/ask',
      verdict: 'flag',
      score: sufficiency,
      check: 'sufficiency',
      checks: {
        sufficiency: { verdict: 'flag', score: sufficiency },
        groundedness: { verdict: 'pass', score: index % 4 === 0 ? 0.2 : 0.9 },
      },
      model: 'gpt-4o-mini-2024-07-18',
      promptVersion: 'sufficiency-2026-12-v2',
      id: index.toString(16).padStart(32, '0'),
      sufficient,
      ...(groundedEvery && index % groundedEvery === 0 ? { grounded: index % 4 !== 0 } : {}),
      labeledBy: 'token:abc',
      labeledAt: '2026-11-25T10:00:00.000Z',
    })
  }).join('\n')
}

/** Runs the command in this process; returns its exit code and what it printed. */
async function run(args: string[], env: Record<string, string | undefined> = {}) {
  let stdout = ''
  let stderr = ''
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk)
    return true
  })
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk)
    return true
  })
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]))
  Object.assign(process.env, env)
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete process.env[name]
  try {
    const code = await main(args)
    return { code, stdout, stderr }
  } finally {
    vi.restoreAllMocks()
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
}

let server: Server
let origin: string
const seen: Array<string | undefined> = []

beforeAll(async () => {
  // The review page's export, as the Worker serves it: operators' bearer token only.
  server = createServer((request, response) => {
    seen.push(request.headers.authorization)
    if (request.headers.authorization !== `Bearer ${TOKEN}`) {
      response.writeHead(401, { 'content-type': 'application/json' })
      response.end('{"error":{"type":"unauthorized"}}')
      return
    }
    response.writeHead(200, { 'content-type': 'application/jsonl; charset=utf-8' })
    response.end(`${exportLines(60, 2)}\n`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
})

afterEach(() => {
  seen.length = 0
})

describe('what "too few" means', () => {
  it('a side needs --min-count labels, and at least 1/(1 − precision) to show a precision below 100%', () => {
    expect(labelsNeeded(0.95, 10)).toBe(20)
    expect(labelsNeeded(0.9, 10)).toBe(10)
    expect(labelsNeeded(0.99, 10)).toBe(100)
    expect(labelsNeeded(0.5, 10)).toBe(10)
    expect(labelsNeeded(1, 10)).toBe(10)
    expect(labelsNeeded(0.8, 30)).toBe(30)
  })

  it('warns for each kind of label that is short, and not for one that is not', () => {
    const targets = { passPrecision: 0.95, blockPrecision: 0.9 }
    expect(tooFewLabels({ labeled: 40, yes: 20, no: 20 }, 'sufficiency', targets)).toEqual([])
    expect(tooFewLabels({ labeled: 25, yes: 19, no: 6 }, 'sufficiency', targets)).toEqual([
      'only 19 production sufficiency labels are "sufficient": a pass precision of 95% needs at least 20 (label 1 more)',
      'only 6 production sufficiency labels are "insufficient": a block precision of 90% needs at least 10 (label 4 more)',
    ])
  })
})

describe('rag-guard calibrate on the review page’s export', () => {
  it('reads it from a file: the production labels per check, and the snippet', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'rag-guard-labels-'))
    const file = join(directory, 'labels.jsonl')
    writeFileSync(file, `${exportLines(60, 2)}\n`)
    const result = await run(['calibrate', file, '--pass-precision', '0.9'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(
      'RAG Guard calibration: 60 labeled examples (30 sufficient, 30 insufficient) from the decision log',
    )
    expect(result.stdout).toContain(
      'production labels: sufficiency 60 (30 sufficient, 30 insufficient) · groundedness 30 (15 grounded, 15 hallucinated)',
    )
    expect(result.stdout).not.toContain('WARNING')
    expect(result.stdout).toMatch(/\[vars\]\nBLOCK_BELOW = [\d.]+\nFLAG_BELOW = [\d.]+/)
  })

  it('fetches it with the operator token from RAG_GUARD_TOKEN, never from the command line', async () => {
    const url = `${origin}/_guard/labels.jsonl`
    const report = join(mkdtempSync(join(tmpdir(), 'rag-guard-report-')), 'report.html')
    const result = await run(['calibrate', url, '--check', 'groundedness', '--report', report], {
      RAG_GUARD_TOKEN: TOKEN,
    })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(seen).toEqual([`Bearer ${TOKEN}`])
    expect(result.stdout).toContain(
      'RAG Guard calibration of groundedness: 30 labeled examples (15 grounded, 15 hallucinated)',
    )
    expect(result.stdout).toContain(
      'WARNING: only 15 production groundedness labels are "grounded": a pass precision of 95% needs at least 20 (label 5 more)',
    )
    expect(result.stdout).not.toContain('are "hallucinated"')
    expect(result.stdout).toContain('GROUNDEDNESS_FLAG_BELOW')
    // The HTML report says the same.
    const html = readFileSync(report, 'utf8')
    expect(html).toContain(
      'Check: <strong>groundedness</strong> · production labels: sufficiency 60',
    )
    expect(html).toContain(
      '<p class="warning" data-field="too-few">only 15 production groundedness',
    )
  })

  it('reads the token from the variable --token-env names', async () => {
    const result = await run(
      ['calibrate', `${origin}/_guard/labels.jsonl`, '--token-env', 'GUARD_OPERATOR'],
      { GUARD_OPERATOR: TOKEN, RAG_GUARD_TOKEN: undefined },
    )
    expect(result.code).toBe(0)
    expect(seen).toEqual([`Bearer ${TOKEN}`])
  })

  it('says what to do when the guard refuses, in one line', async () => {
    const result = await run(['calibrate', `${origin}/_guard/labels.jsonl`], {
      RAG_GUARD_TOKEN: undefined,
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toBe(
      `rag-guard: ${origin}/_guard/labels.jsonl answered 401: set RAG_GUARD_TOKEN (or the variable --token-env names) to an operator token\n`,
    )
  })

  it('never sends the token in clear text to another host', async () => {
    const result = await run(['calibrate', 'http://guard.example.com/_guard/labels.jsonl'], {
      RAG_GUARD_TOKEN: TOKEN,
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('refusing to send the operator token over plain http')
  })

  it('refuses a check it does not know', async () => {
    const result = await run(['calibrate', 'labels.jsonl', '--check', 'relevance'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('--check must be sufficiency or groundedness')
  })
})
