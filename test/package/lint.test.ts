/**
 * The packed tarball as package linters see it: publint (package.json against the files) and
 * Are the Types Wrong (each entry's types resolve as its JavaScript does, in Node and bundlers).
 * ESM only, by design: the CommonJS and node10 resolutions are out of scope (docs/install.md).
 */
import { join } from 'node:path'
import { describe, expect, inject, it } from 'vitest'
import { ROOT, run } from './helpers'

const bin = (name: string) => join(ROOT, 'node_modules/.bin', name)

describe('the packed tarball', () => {
  it('publint finds no problem', async () => {
    const result = await run(bin('publint'), ['run', inject('tarball'), '--strict'], { cwd: ROOT })
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(result.stdout).toContain('All good!')
  })

  it('Are the Types Wrong finds no problem (profile esm-only)', async () => {
    const result = await run(
      bin('attw'),
      [inject('tarball'), '--profile', 'esm-only', '--format', 'table-flipped'],
      { cwd: ROOT },
    )
    // attw exits 1 on any problem outside the ignored resolutions
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(result.stdout).toMatch(/"rag-guard\/worker"/)
  })
})
