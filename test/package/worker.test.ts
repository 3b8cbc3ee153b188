/**
 * The package in a Hono-only user's Worker project (rag-guard, hono, wrangler: no LangChain
 * installed): the user's own Hono app and the proxy Worker of `rag-guard/worker` (the project of
 * samples/worker-from-package/), each built by the project's wrangler and run in workerd, their
 * bundles with the documented trims, and the package's types under a Workers tsconfig.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import {
  FALLBACK,
  JUDGE_SCRIPT,
  ROOT,
  makeProject,
  must,
  received,
  script,
  typeCheck,
  wranglerDev,
  writeFiles,
  compileExamples,
  readmeExamples,
} from './helpers'

const stub = inject('stubOrigin')
const SAMPLE = join(ROOT, 'samples/worker-from-package')
// The sample's [alias] lines, which docs/install.md gives for a user's own wrangler.toml.
const ALIAS = readFileSync(join(SAMPLE, 'wrangler.toml'), 'utf8').match(/\[alias\][^[]*/)![0]

const HONO_APP = `import { Hono } from 'hono'
import { env } from 'cloudflare:workers'
import { ragGuard } from 'rag-guard'

const app = new Hono()

app.post(
  '/ask',
  ragGuard({
    judge: { model: 'judge', apiKey: 'test', baseURL: \`\${env.STUB_ORIGIN}/s/pkg-judge/v1\` },
    question: '/question',
    context: '/documents',
    answer: '/answer',
    mode: 'enforce',
    blockBelow: 0.2,
    flagBelow: 0.5,
    // Every decision record, to the stub (which keeps what it receives)
    onDecision: (record) =>
      fetch(\`\${env.STUB_ORIGIN}/s/pkg-records/\`, { method: 'POST', body: JSON.stringify(record) }),
  }),
  async (c) => c.json({ answer: 'A day pass costs $12.' }),
)

export default app
`

const HONO_TOML = `name = "user-hono-app"
main = "src/hono.ts"
compatibility_date = "2026-04-01"
minify = true
keep_names = false

${ALIAS}`

// What \`wrangler types\` writes for the vars a project has.
const ENV_TYPES = `declare namespace Cloudflare {
  interface Env {
    STUB_ORIGIN: string
  }
}
`

// A standard Workers tsconfig: ES2022, the Workers types, no @types/node, declarations checked.
// LangChain's own declarations use Symbol.asyncDispose: ESNext.Disposable (docs/install.md).
const WORKERS_TSCONFIG = JSON.stringify({
  compilerOptions: {
    target: 'ES2022',
    module: 'ES2022',
    moduleResolution: 'Bundler',
    lib: ['ES2022', 'ESNext.Disposable'],
    types: ['@cloudflare/workers-types'],
    strict: true,
    skipLibCheck: false,
    noEmit: true,
  },
  files: ['src/hono.ts', 'src/index.ts', 'src/env.d.ts'],
})

let dir: string

beforeAll(async () => {
  dir = await makeProject(
    join(inject('workdir'), 'worker'),
    [inject('tarball'), 'hono@4', 'wrangler@latest', '@cloudflare/workers-types@latest'],
    {
      'src/hono.ts': HONO_APP,
      'src/env.d.ts': ENV_TYPES,
      'wrangler.hono.toml': HONO_TOML,
      'tsconfig.json': WORKERS_TSCONFIG,
      // The sample project, as a user copies it.
      'wrangler.toml': readFileSync(join(SAMPLE, 'wrangler.toml'), 'utf8'),
      'src/index.ts': readFileSync(join(SAMPLE, 'src/index.ts'), 'utf8'),
    },
  )
  await script(stub, 'pkg-judge', JUDGE_SCRIPT)
})

/** Every installed copy of a package in the project (its package.json files). */
function copiesOf(name: string): string[] {
  const found: string[] = []
  const visit = (modules: string) => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules)) {
      const scoped = entry.startsWith('@')
        ? readdirSync(join(modules, entry)).map((inner) => `${entry}/${inner}`)
        : [entry]
      for (const pkg of scoped) {
        if (pkg === name) found.push(join(modules, pkg))
        visit(join(modules, pkg, 'node_modules'))
      }
    }
  }
  visit(join(dir, 'node_modules'))
  return found
}

describe('a Hono-only Worker project', () => {
  it('has one copy of hono and of @langchain/core, and no langchain', () => {
    expect(copiesOf('hono')).toHaveLength(1)
    expect(copiesOf('@langchain/core')).toHaveLength(1)
    expect(copiesOf('langchain')).toEqual([])
  })

  it('type-checks with a standard Workers tsconfig (no @types/node, skipLibCheck false)', async () => {
    expect(await typeCheck(dir, 'tsconfig.json')).toBe('')
  })

  it('the Hono and Worker examples of README.md and docs/ compile against the installed package', async () => {
    const files = readmeExamples('workers')
    expect(files.length).toBeGreaterThanOrEqual(4)
    expect(
      await compileExamples(dir, files, {
        ...JSON.parse(WORKERS_TSCONFIG).compilerOptions,
      }),
    ).toBe('')
  })

  it('its Hono app, built by wrangler in workerd: pass, block, and every decision record arrives', async () => {
    const server = await wranglerDev(dir, 'wrangler.hono.toml', { STUB_ORIGIN: stub })
    try {
      const ask = (question: string) =>
        fetch(`${server.origin}/ask`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ question, documents: ['A day pass costs $12.'] }),
        })
      const passed = await ask('What does a day pass cost?')
      expect(passed.headers.get('x-rag-guard-verdict')).toBe('pass')
      expect(await passed.json()).toEqual({ answer: 'A day pass costs $12.' })
      const blocked = await ask('Which company manufactures the bikes?')
      expect(blocked.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(await blocked.json()).toEqual({ answer: FALLBACK })
      // The records are sent after the responses (waitUntil): wait for both, boundedly.
      let records: unknown[] = []
      for (let attempt = 0; attempt < 100 && records.length < 2; attempt++) {
        records = (await received(stub, 'pkg-records')).map(({ body }) => body)
        if (records.length < 2) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(records).toMatchObject([{ verdict: 'pass' }, { verdict: 'block' }])
      expect(server.output()).not.toMatch(/background task failed|TypeError/)
    } finally {
      await server.stop()
    }
  })

  it('the proxy Worker of rag-guard/worker (samples/worker-from-package): pass, block, scheduled', async () => {
    await script(stub, 'pkg-upstream', {
      upstream: {
        json: {
          answer: 'A day pass costs $12.',
          sources: [{ pageContent: 'A day pass costs $12.' }],
        },
      },
    })
    const server = await wranglerDev(
      dir,
      'wrangler.toml',
      {
        UPSTREAM_URL: `${stub}/s/pkg-upstream`,
        OPENAI_BASE_URL: `${stub}/s/pkg-judge/v1`,
        OPENAI_API_KEY: 'test',
        GUARD_AUTH: 'none',
        GUARD_MODE: 'enforce',
      },
      ['--test-scheduled'],
    )
    try {
      const ask = (question: string) =>
        fetch(`${server.origin}/ask`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ question }),
        })
      const passed = await ask('What does a day pass cost?')
      expect(passed.headers.get('x-rag-guard-verdict')).toBe('pass')
      expect(await passed.json()).toMatchObject({ answer: 'A day pass costs $12.' })
      const blocked = await ask('Which company manufactures the bikes?')
      expect(blocked.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(await blocked.json()).toMatchObject({ answer: FALLBACK })
      const scheduled = await fetch(`${server.origin}/__scheduled?cron=23+*+*+*+*`)
      expect(scheduled.status).toBe(200)
      await scheduled.text()
    } finally {
      await server.stop()
    }
  })
})

describe('bundles built by the user’s wrangler', () => {
  /** `wrangler deploy --dry-run` of a config: the bundle's text and gzip size. */
  async function bundle(config: string) {
    const outdir = join(dir, 'out', config)
    await must(
      join(dir, 'node_modules/.bin/wrangler'),
      ['deploy', '--dry-run', '--outdir', outdir, '--config', config],
      { cwd: dir, env: { ...process.env, XDG_CONFIG_HOME: join(dir, '.config') } },
    )
    const file = readdirSync(outdir).find((name) => name.endsWith('.js'))!
    const text = readFileSync(join(outdir, file), 'utf8')
    return { text, gzipKiB: gzipSync(text, { level: 9 }).byteLength / 1024 }
  }

  it.each([
    ['the Hono app', 'wrangler.hono.toml'],
    ['the proxy Worker', 'wrangler.toml'],
  ])(
    '%s: the [alias] lines from node_modules leave out zod’s locales and LangSmith’s client',
    async (_, config) => {
      const trimmed = await bundle(config)
      // A German message of zod's locales; the upload path of LangSmith's tracing client.
      // No LangChain agent code (langchain, LangGraph) in a Worker that does not use it.
      const found = ['erwartet', 'runs/multipart', 'createAgent', 'StateGraph'].filter((marker) =>
        trimmed.text.includes(marker),
      )
      expect(found).toEqual([])
      // The size is reported, not held to DESIGN's 250 KiB here: it moves with the newest
      // @langchain/openai and openai releases this test installs (docs/performance.md).
      console.log(`${config}: ${trimmed.gzipKiB.toFixed(1)} KiB gzip with the trims`)
    },
  )

  it('without the [alias] lines the same Hono app still builds (the trims are optional)', async () => {
    writeFiles(dir, {
      'wrangler.plain.toml': HONO_TOML.replace(/\[alias\][^[]*/, ''),
    })
    const plain = await bundle('wrangler.plain.toml')
    expect(['erwartet', 'runs/multipart'].filter((marker) => plain.text.includes(marker))).toEqual([
      'erwartet',
      'runs/multipart',
    ])
    console.log(`wrangler.plain.toml: ${plain.gzipKiB.toFixed(1)} KiB gzip without the trims`)
  })
})
