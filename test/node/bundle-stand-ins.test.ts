/**
 * The Worker's bundle leaves out what it never runs (wrangler.toml `[alias]`, src/bundle/): these
 * tests hold the stand-ins to the real packages, so that an upgrade that changes them fails here
 * rather than in a deployed Worker.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import * as realZod from 'zod'
import * as realCore from 'zod/v4/core'
import * as realRunTrees from 'langsmith/run_trees'
// A file of zod's outside its exports map: the schema compiler, which the stand-ins leave out
import * as compiler from '../../node_modules/zod/v4/core/compile.js'
// @ts-expect-error: plain JavaScript stand-ins, without types (they take the packages' place)
import * as zod from '../../src/bundle/zod.mjs'
// @ts-expect-error: as above
import * as core from '../../src/bundle/zod-core.mjs'
// @ts-expect-error: as above
import * as langsmith from '../../src/bundle/langsmith.mjs'
// @ts-expect-error: as above
import * as runTrees from '../../src/bundle/langsmith-run-trees.mjs'

const ROOT = join(import.meta.dirname, '../..')
/** What the stand-ins leave out of zod: every locale, the schema compiler, `fromJSONSchema`. */
const LEFT_OUT = [
  'locales',
  'compile',
  'withParser',
  'ZodCompileAsyncError',
  'ZodCompileUnsupportedError',
  'fromJSONSchema',
]

const names = (module: object) => Object.keys(module).sort()
const without = (module: object, left: string[]) =>
  names(module).filter((name) => !left.includes(name))

/** Every `import { … } from "<from>"` in a package's built files. */
function importedNames(dir: string, from: RegExp): Set<string> {
  const found = new Set<string>()
  const visit = (path: string) => {
    for (const entry of readdirSync(path)) {
      const full = join(path, entry)
      if (statSync(full).isDirectory()) visit(full)
      else if (/\.m?js$/.test(entry)) {
        const text = readFileSync(full, 'utf8')
        for (const match of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
          if (!from.test(match[2]!)) continue
          for (const part of match[1]!.split(',')) {
            const name = part.trim().split(/\s+as\s+/)[0]!
            if (name) found.add(`${match[2]}:${name}`)
          }
        }
      }
    }
  }
  visit(dir)
  return found
}

const STAND_INS: Record<string, object> = {
  zod,
  'zod/v4': zod,
  'zod/v4/core': core,
  langsmith,
  'langsmith/run_trees': runTrees,
}

describe('the bundle stand-ins', () => {
  it('zod: every export of the installed zod but the locales and the compiler', () => {
    expect(names(zod)).toEqual(without(realZod, LEFT_OUT))
    expect(names(zod.z)).toEqual(without(realZod.z, LEFT_OUT))
    expect(names(core)).toEqual(without(realCore, [...LEFT_OUT, ...names(compiler)]))
  })

  it('zod: validates and words its errors as zod does (English is kept)', () => {
    const schema = zod.z.object({ name: zod.z.string(), size: zod.z.number().int().min(1) })
    const real = realZod.z.object({
      name: realZod.z.string(),
      size: realZod.z.number().int().min(1),
    })
    for (const value of [{ name: 'a', size: 2 }, { name: 3, size: 0 }, null]) {
      const ours = schema.safeParse(value)
      const theirs = real.safeParse(value)
      expect(ours.success).toBe(theirs.success)
      expect(ours.error?.issues.map((issue: { message: string }) => issue.message)).toEqual(
        theirs.error?.issues.map((issue) => issue.message),
      )
    }
    expect(real.safeParse({ name: 3, size: 0 }).error?.issues[0]?.message).toMatch(/^Invalid input/)
  })

  it('export every name LangChain imports from the packages they stand in for', () => {
    const imported = new Set([
      ...importedNames(
        join(ROOT, 'node_modules/@langchain/core/dist'),
        /^(zod\/v4(\/core)?|langsmith(\/run_trees)?)$/,
      ),
      ...importedNames(
        join(ROOT, 'node_modules/@langchain/openai/dist'),
        /^(zod\/v4(\/core)?|langsmith(\/run_trees)?)$/,
      ),
    ])
    expect(imported.size).toBeGreaterThan(5)
    const missing = [...imported].filter((entry) => {
      const [from, name] = entry.split(':') as [string, string]
      return !(name in STAND_INS[from]!)
    })
    expect(missing).toEqual([])
  })

  it('langsmith: runs are ordered as LangSmith orders them; its tracing client says it is left out', () => {
    for (const [epoch, id, order] of [
      [Date.UTC(2026, 0, 2, 3, 4, 5, 678), 'run-a', 7],
      [0, 'run-b', 1],
      [Date.UTC(2026, 10, 30, 23, 59, 59, 999), 'run-c', 123],
    ] as const) {
      expect(runTrees.convertToDottedOrderFormat(epoch, id, order)).toEqual(
        realRunTrees.convertToDottedOrderFormat(epoch, id, order),
      )
    }
    const run = new runTrees.RunTree({ name: 'judge', tracingEnabled: true })
    expect(run.tracingEnabled).toBe(false)
    expect(runTrees.isRunTree(run)).toBe(true)
    expect(runTrees.isRunTree(run.createChild({ name: 'child' }))).toBe(true)
    expect(runTrees.isRunTree({})).toBe(false)
    expect(() => new langsmith.Client()).toThrow(/LangSmith tracing is not in this bundle/)
  })

  it('wrangler.toml aliases every name to a stand-in that exists', () => {
    const config = parseToml(readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')) as {
      alias: Record<string, string>
      keep_names: boolean
    }
    expect(config.keep_names).toBe(false)
    for (const name of Object.keys(STAND_INS))
      expect(config.alias[name]).toMatch(/^\.\/src\/bundle\//)
    for (const path of Object.values(config.alias))
      expect(statSync(join(ROOT, path)).isFile()).toBe(true)
  })
})
