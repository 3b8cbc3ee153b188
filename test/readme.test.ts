/**
 * The reference pages (docs/reference/) say what the code does: every reason code with the
 * policy it follows, every option and Worker setting with its default. A change to one without
 * the other fails here.
 */
import { describe, expect, it } from 'vitest'
import options from '../docs/reference/options.md?raw'
import responses from '../docs/reference/responses.md?raw'
import settings from '../docs/reference/settings.md?raw'
import { REASON_POLICY } from '../src'
import { WORKER_SETTINGS } from '../src/config'
import { GUARD_SETTINGS } from '../src/guard/options'
import { JUDGE_SETTINGS } from '../src/judge/options'
import { LANGCHAIN_SETTINGS, SHARED_SETTINGS } from '../src/langchain/options'
import type { Setting } from '../src/settings'

/** The section of a page under `heading`, up to the next heading. */
function section(page: string, heading: string): string {
  const start = page.indexOf(`\n${heading}\n`)
  if (start === -1) throw new Error(`no heading ${heading}`)
  const rest = page.slice(start + heading.length + 2)
  const end = rest.search(/\n#{1,4} /)
  return end === -1 ? rest : rest.slice(0, end)
}

/** The rows of the first Markdown table whose header starts with `first`, as cells. */
function table(text: string, first: string): string[][] {
  const lines = text.split('\n').map((line) => line.trim())
  const header = lines.findIndex((line) => new RegExp(`^\\|\\s*${first}\\s*\\|`).test(line))
  if (header === -1) throw new Error(`no table starting with "${first}"`)
  const rows: string[][] = []
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break
    rows.push(
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    )
  }
  return rows
}

/** `` `name` `` → name; several names in one cell → each. */
const codes = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!)

function defaultOf(setting: Setting<unknown>, worker: boolean): unknown {
  return worker ? (setting.workerDefault ?? setting.default) : setting.default
}

describe('reference tables', () => {
  it('the reason table lists every reason code with the policy the code gives it', () => {
    const rows = table(section(responses, '## Response headers'), 'code')
    const documented = Object.fromEntries(
      rows.flatMap(([code, policy]) => codes(code!).map((name) => [name, codes(policy!)[0]])),
    )
    expect(documented).toEqual({ ...REASON_POLICY })
  })

  /** Every setting of `owner` has a row in the table of `text`, and the row shows its default. */
  function expectDocumented(
    text: string,
    owner: string,
    first: string,
    definitions: Record<string, Setting<unknown>>,
    worker: boolean,
  ) {
    const rows = table(text, first)
    const byName = new Map(rows.map((row) => [codes(row[0]!)[0], row[1]!]))
    for (const [name, setting] of Object.entries(definitions)) {
      expect(byName.has(name), `${name} (${owner}) is in its table`).toBe(true)
      const value = defaultOf(setting, worker)
      if (value !== undefined)
        expect(byName.get(name), `default of ${name} (${owner})`).toContain(String(value))
    }
  }

  it('the options of ragGuard() are all documented, with their defaults', () => {
    expectDocumented(
      section(options, '## Options of `ragGuard(options)`'),
      'ragGuard()',
      'option',
      GUARD_SETTINGS,
      false,
    )
  })

  it('the options of createJudge() are all documented, with their defaults', () => {
    expectDocumented(
      section(options, '## Options of `createJudge(options)`'),
      'createJudge()',
      'option',
      JUDGE_SETTINGS,
      false,
    )
  })

  it('the options of the LangChain forms are all documented, with their defaults', () => {
    const langchain = {
      ...Object.fromEntries(SHARED_SETTINGS.map((name) => [name, GUARD_SETTINGS[name]])),
      ...LANGCHAIN_SETTINGS,
    }
    expectDocumented(
      section(
        options,
        '## Options of `ragGuardMiddleware(options)` and `ragGuardRunnable(chain, options)`',
      ),
      'the LangChain forms',
      'option',
      langchain,
      false,
    )
  })

  it('the Worker settings are all documented, with the Worker’s defaults', () => {
    expectDocumented(settings, 'the Worker settings', 'setting', WORKER_SETTINGS, true)
  })
})
