/**
 * The shell examples of docs/ that run locally from a clone (`<!-- sh: tested <id> -->`), run as
 * the page writes them: read from the page by shellExample(id), in bash with `set -euo
 * pipefail`, in a scratch directory that links the checkout's package.json, node_modules,
 * scripts, src and bin and copies samples (so the files they write stay out of the checkout), with a free
 * port in place of the page's fixed one (8080; wrangler dev's default 8787 is given as --port).
 */
import { spawn } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ROOT, shellExample } from '../support/docs'
import { freePort, QUIET_ENV } from '../support/local-worker'

const LINKED = ['package.json', '.nvmrc', 'node_modules', 'scripts', 'src', 'bin']
// Copied, not linked: a sample run directly checks that it is the script Node was given
// (`import.meta.url` against `process.argv[1]`), which a link's real path is not.
const COPIED = ['samples']

interface Shell {
  code: number | null
  output: string
}

const scratch: string[] = []
const running: number[] = []

afterEach(() => {
  for (const pid of running.splice(0)) stopGroup(pid)
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A scratch directory linked to the checkout, as a clone after `npm ci` looks from inside. */
function scratchClone(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rag-guard-docs-'))
  scratch.push(dir)
  for (const name of LINKED) symlinkSync(join(ROOT, name), join(dir, name))
  for (const name of COPIED) cpSync(join(ROOT, name), join(dir, name), { recursive: true })
  return dir
}

/**
 * Runs a script in bash, in its own process group (its background jobs are stopped with it);
 * past `limitMs` the group is stopped, and what it printed is kept for the failure message.
 */
function bash(script: string, cwd: string, env: Record<string, string> = {}, limitMs = 240_000) {
  const child = spawn('bash', ['-c', `set -euo pipefail\n${script}`], {
    cwd,
    detached: true,
    env: { ...QUIET_ENV, ...env, OPENAI_API_KEY: '', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.push(child.pid!)
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const limit = setTimeout(() => {
    output += `\n(stopped after ${limitMs} ms)`
    stopGroup(child.pid!)
  }, limitMs)
  const done = new Promise<Shell>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(limit)
      resolve({ code, output })
    }),
  )
  return { done, output: () => output }
}

function stopGroup(pid: number) {
  try {
    process.kill(-pid, 'SIGTERM')
  } catch {
    // already gone
  }
}

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n')

describe('the shell examples of docs/ that run locally', () => {
  it('calibrate-offline (docs/calibrate.md): eval, calibrate, score with the stand-in, both checks', async () => {
    const example = shellExample('calibrate-offline')
    const dir = scratchClone()
    const port = String(await freePort())
    const { code, output } = await bash(example.code.replaceAll('8080', port), dir).done
    expect(code, output).toBe(0)
    expect(lines(join(dir, 'scores.jsonl'))).toHaveLength(120)
    expect(existsSync(join(dir, 'report.html'))).toBe(true)
    expect(lines(join(dir, 'halueval-scores.jsonl'))).toHaveLength(400)
    // What the page says these commands print.
    expect(output).toContain('RAG Guard calibration of groundedness: 200 labeled examples')
    expect(output).toContain('AUROC 0.903   AUPRC (hallucinated) 0.806')
    expect(output).toContain('GUARD_CHECKS = "sufficiency,groundedness"')
    expect(output).toMatch(/verdict/i)
  }, 300_000)

  it('sampling-offline (docs/judges.md): eval and calibrate by sampling, and auto on a model without logprobs', async () => {
    const example = shellExample('sampling-offline')
    const dir = scratchClone()
    const port = String(await freePort())
    const { code, output } = await bash(example.code.replaceAll('8080', port), dir).done
    expect(code, output).toBe(0)
    const scores = lines(join(dir, 'scores-sampling.jsonl')).map(
      (line) => JSON.parse(line) as { estimator: string },
    )
    expect(scores).toHaveLength(120)
    expect(new Set(scores.map((score) => score.estimator))).toEqual(new Set(['sampling']))
    expect(existsSync(join(dir, 'report-sampling.html'))).toBe(true)
    expect(output).toContain('sampling')
  }, 300_000)

  it('review-local (docs/calibrate.md): the schema applied to a local D1, and wrangler dev serving the review page from it', async () => {
    const example = shellExample('review-local')
    const dir = scratchClone()
    // What the page asks first: [[d1_databases]] uncommented, with any database_id.
    const config = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8').replace(
      /^# (\[\[d1_databases\]\]|binding = "GUARD_DB"|database_name = .*|database_id = .*|migrations_dir = .*)$/gm,
      '$1',
    )
    expect(config).toMatch(/^\[\[d1_databases\]\]$/m)
    writeFileSync(join(dir, 'wrangler.toml'), config)
    const operator = 'operator-token-of-the-docs-test-0123456789'
    writeFileSync(
      join(dir, '.dev.vars'),
      [
        'OPENAI_API_KEY="sk-not-a-key-of-the-docs-test"',
        'GUARD_TOKENS="caller-token-of-the-docs-test-0123456789"',
        `GUARD_OPERATOR_TOKENS="${operator}"`,
      ].join('\n'),
    )
    const port = await freePort()
    const inspector = await freePort()
    const script = example.code.replace(
      /^npx wrangler dev(.*)$/m,
      `npx wrangler dev$1 --ip 127.0.0.1 --port ${port} --inspector-port ${inspector}`,
    )
    const shell = bash(script, dir, { XDG_CONFIG_HOME: join(dir, '.config') })
    let page: Response | undefined
    for (let tries = 0; tries < 240 && !page; tries++) {
      const ended = await Promise.race([
        shell.done,
        new Promise<undefined>((resolve) => setTimeout(resolve, 500)),
      ])
      if (ended) throw new Error(`the example stopped (${ended.code}):\n${ended.output}`)
      page = await fetch(`http://127.0.0.1:${port}/_guard/review`, {
        headers: { authorization: `Bearer ${operator}` },
      }).catch(() => undefined)
    }
    expect(page?.status, shell.output()).toBe(200)
    const html = await page!.text()
    expect(html).not.toContain('No decision store')
    expect(shell.output()).toMatch(/0001_\w+\.sql/)
  }, 180_000)
})
