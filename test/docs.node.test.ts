/**
 * The documentation holds together: every relative link and anchor of README.md, docs/ and the
 * samples' READMEs resolves (GitHub's anchors), every code block carries the marker
 * docs/README.md requires, every shell example is run by a test, by CI, or marked as needing an
 * account, and the README stays short. The TypeScript examples are compiled by the package test
 * (test/package/), from the same list (`typeScriptExamples`).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  anchors,
  codeBlocks,
  docPages,
  links,
  readPage,
  ROOT,
  samplePages,
  typeScriptExamples,
} from './support/docs'

const where = (page: string, line: number) => `${page}:${line}`

describe('links and anchors', () => {
  const pages = [...docPages(), ...samplePages()]

  it('the pages are README.md, every page of docs/, and the samples’ READMEs', () => {
    expect(pages).toContain('README.md')
    expect(pages).toContain('docs/README.md')
    expect(pages).toContain('docs/reference/settings.md')
    expect(pages).toContain('samples/worker-from-package/README.md')
  })

  it('every relative link names a file or folder that exists, and every anchor a heading of it', () => {
    const broken: string[] = []
    for (const page of pages) {
      for (const link of links(page)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue // https:, mailto:
        const [path, anchor] = link.target.split('#') as [string, string | undefined]
        const file = path === '' ? page : normalize(join(dirname(page), decodeURI(path)))
        if (file.startsWith('..') || !existsSync(join(ROOT, file))) {
          broken.push(`${where(page, link.line)}: ${link.target} (no ${file})`)
          continue
        }
        if (anchor === undefined) continue
        if (statSync(join(ROOT, file)).isDirectory() || !file.endsWith('.md')) {
          broken.push(`${where(page, link.line)}: ${link.target} (an anchor into a non-page)`)
          continue
        }
        if (!anchors(readPage(file)).has(anchor))
          broken.push(
            `${where(page, link.line)}: ${link.target} (no heading #${anchor} in ${file})`,
          )
      }
    }
    expect(broken).toEqual([])
  })

  it('anchors are GitHub’s: code, punctuation and links dropped, spaces to hyphens, repeats numbered', () => {
    expect([
      ...anchors(
        [
          '# RAG Guard',
          '## `rag-guard calibrate <scores.jsonl | URL>`',
          '### Options of `ragGuard(options)`',
          '## 1. Turn on the store',
          '## Notes',
          '```sh',
          '# not a heading',
          '```',
          '## Notes',
        ].join('\n'),
      ),
    ]).toEqual([
      'rag-guard',
      'rag-guard-calibrate-scoresjsonl--url',
      'options-of-ragguardoptions',
      '1-turn-on-the-store',
      'notes',
      'notes-1',
    ])
  })

  it('a broken link or anchor is found', () => {
    const page = 'docs/example.md'
    const found = links(page, 'See [a](../README.md#nowhere) and `[b](not-a-link)`.\n')
    expect(found).toEqual([{ page, line: 1, target: '../README.md#nowhere' }])
    expect(anchors(readPage('README.md')).has('nowhere')).toBe(false)
  })
})

describe('code blocks', () => {
  const blocks = docPages().flatMap((page) => codeBlocks(page))

  it('every ```ts block compiles (the package test) unless marked as a fragment', () => {
    const ts = blocks.filter((block) => block.lang === 'ts')
    expect(ts.length).toBeGreaterThan(10)
    for (const block of ts)
      expect([undefined, 'ts: fragment'], where(block.page, block.line)).toContain(block.marker)
    expect(typeScriptExamples().length).toBe(
      ts.filter((block) => block.marker !== 'ts: fragment').length,
    )
  })

  it('every ```sh block is run by a test, run by CI, or marked as needing an account', () => {
    const sh = blocks.filter((block) => block.lang === 'sh' || block.lang === 'bash')
    expect(sh.length).toBeGreaterThan(5)
    const unmarked = sh
      .filter((block) => !/^sh: (needs-account|ci|tested [a-z0-9-]+)$/.test(block.marker ?? ''))
      .map((block) => `${where(block.page, block.line)}: ${block.marker ?? 'no marker'}`)
    expect(unmarked).toEqual([])
  })

  it('each `tested <id>` example is marked once and run by a test through shellExample(id)', () => {
    const tests = testSources()
    const ids = blocks
      .map((block) => /^sh: tested (.+)$/.exec(block.marker ?? '')?.[1])
      .filter((id) => id !== undefined)
    expect(ids.length).toBeGreaterThan(0)
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids)
      expect(
        tests.some((source) => source.includes(`shellExample('${id}')`)),
        `a test calls shellExample('${id}')`,
      ).toBe(true)
  })

  it('each command of a `ci` example is a step of .ci/run', () => {
    const steps = readFileSync(join(ROOT, '.ci/run'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
    const ci = blocks.filter((block) => block.marker === 'sh: ci')
    expect(ci.length).toBeGreaterThan(0)
    for (const block of ci)
      for (const command of commands(block.code))
        expect(
          steps.some((step) => step === command || step.startsWith(`${command} `)),
          `${where(block.page, block.line)}: "${command}" in .ci/run`,
        ).toBe(true)
  })
})

describe('the pages', () => {
  it('README.md stays short: at most 250 lines', () => {
    expect(readPage('README.md').split('\n').length).toBeLessThanOrEqual(250)
  })

  it('every guide opens with who it is for and what they will have at the end; every reference page says what it is', () => {
    for (const page of docPages().filter((page) => page.startsWith('docs/'))) {
      const opening = (readPage(page).split('\n\n')[1] ?? '').replace(/\s+/g, ' ')
      if (page.startsWith('docs/reference/')) expect(opening, page).toMatch(/^Reference/)
      else if (page !== 'docs/README.md') {
        expect(opening, page).toMatch(/^\*\*For\*\* /)
        expect(opening, page).toContain('**At the end**')
      }
    }
  })
})

/** The commands of a shell example: its lines split at `&&`, comments dropped. */
function commands(code: string): string[] {
  return code
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line && !line.startsWith('#'))
    .flatMap((line) => line.split('&&').map((part) => part.trim()))
}

/** The source of every test file (where shellExample(id) calls are looked for). */
function testSources(): string[] {
  return readdirSync(join(ROOT, 'test'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.test.ts'))
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), 'utf8'))
}
