/**
 * The README's first command, as a new user runs it: `npm run demo -- --once` prints the table of
 * the sample requests and stops. What it prints after the table must hold for a stopped server:
 * no address or token of a review page that no longer answers.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../support/local-worker'

describe('npm run demo -- --once', () => {
  it('prints every sample row and no address of the stopped review page', () => {
    const run = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'samples/demo.ts', '--once'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 90_000,
        env: {
          ...process.env,
          WRANGLER_SEND_METRICS: 'false',
          WRANGLER_HIDE_BANNER: 'true',
          CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        },
      },
    )
    expect(run.error).toBeUndefined()
    expect(run.stderr).not.toMatch(/\n\s+at /) // no stack trace
    expect(run.status).toBe(0)
    const lines = run.stdout.split('\n')
    const header = lines.findIndex((line) => line.startsWith('format '))
    expect(header).toBeGreaterThanOrEqual(0)
    const rows = lines.slice(header + 2, lines.indexOf('', header))
    expect(rows).toHaveLength(12)
    for (const row of rows) expect(row).toMatch(/\b(pass|flag|block)\b/)
    // The banner before the table names the running servers; what follows it must not.
    const after = lines.slice(header + 2 + rows.length).join('\n')
    expect(after).toContain('run `npm run demo` without --once')
    expect(after).not.toContain('/_guard/review')
    expect(after).not.toMatch(/http:\/\/(127\.0\.0\.1|localhost)/)
  }, 120_000)
})
