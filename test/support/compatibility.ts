/**
 * The Workers runtime settings every local runtime of the tests and the benchmark uses: read from
 * the project's wrangler.toml, so the tests run on the compatibility date and flags that deploy.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'smol-toml'

const config = parse(readFileSync(join(import.meta.dirname, '../../wrangler.toml'), 'utf8')) as {
  compatibility_date: string
  compatibility_flags?: string[]
}

export const compatibilityDate = config.compatibility_date
export const compatibilityFlags = config.compatibility_flags ?? []
