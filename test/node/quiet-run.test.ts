/**
 * A green run prints what a user needs to see. Runs one Workers test that makes a fetch fail on
 * purpose (an upstream on a refused port) the way `npm test` runs it, and reads what it printed:
 * workerd's own logs of the failed connection (raw stack addresses, "uncaught exception" for an
 * error the guard handles) and the guard's operator log lines stay off the output.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../support/local-worker'

describe('a passing test run', () => {
  it('prints no workerd log and no operator log line for failures a test causes on purpose', () => {
    const run = spawnSync(
      process.execPath,
      [
        join(ROOT, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--project',
        'workers',
        'test/faults.test.ts',
        '-t',
        'down → 502 upstream_unreachable',
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } },
    )
    const output = `${run.stdout}\n${run.stderr}`
    expect(run.status, output).toBe(0)
    expect(output).toMatch(/Tests\s+1 passed/)
    expect(output).not.toContain('uncaught exception')
    expect(output).not.toContain('workerd@')
    expect(output).not.toMatch(/^(stdout|stderr) \|/m)
    expect(output).not.toContain('upstream unreachable')
  }, 150_000)
})
