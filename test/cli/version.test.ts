/**
 * `rag-guard --version` prints the package's version (what a user compares with the CHANGELOG).
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '../..')
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string
}

describe('rag-guard --version', () => {
  it.each(['--version', '-v'])(
    '%s prints the version of package.json and exits 0',
    async (flag) => {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [join(ROOT, 'bin/rag-guard.mjs'), flag],
        { cwd: ROOT },
      )
      expect(stdout).toBe(`${version}\n`)
    },
  )
})
