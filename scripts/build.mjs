// `npm run build`: the package's dist/ from src/ — ESM JavaScript by esbuild (the bundler wrangler
// and Vitest already use; tsdown and tsup 9 need Node >= 22.18), `.d.ts` files by tsc (esbuild
// writes no types). dist/ is never committed; `npm pack` builds it (prepack).
import { execFileSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = join(ROOT, 'dist')

rmSync(DIST, { recursive: true, force: true })

// The entries. Every package stays external (hono, LangChain, zod come from the user's tree: one
// copy of each); code shared by entries goes to chunks, so an entry loads only what it imports,
// and the review page (a dynamic import of the Worker) is a chunk of its own.
await build({
  absWorkingDir: ROOT,
  entryPoints: {
    index: 'src/index.ts',
    langchain: 'src/langchain/index.ts',
    worker: 'src/worker.ts',
    cli: 'src/cli/bin.ts',
  },
  outdir: DIST,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  packages: 'external',
  external: ['node:*', 'cloudflare:*'],
  // tsconfig.json sets JSX to hono/jsx (the review page)
  tsconfig: 'tsconfig.json',
  logLevel: 'warning',
})

// The bundle trims for a user's wrangler.toml `[alias]` (docs/install.md): the stand-ins of
// src/bundle/ with the zod and langsmith files they take from node_modules built in, so that the
// alias lines point only into this package and work wherever npm put zod and langsmith.
// zod.mjs and zod-core.mjs share one copy of zod's core (a chunk).
await build({
  absWorkingDir: ROOT,
  entryPoints: {
    zod: 'src/bundle/zod.mjs',
    'zod-core': 'src/bundle/zod-core.mjs',
    'zod-v3': 'node_modules/zod/v3/index.js',
    langsmith: 'src/bundle/langsmith.mjs',
    'langsmith-run-trees': 'src/bundle/langsmith-run-trees.mjs',
    'langsmith-traceable': 'node_modules/langsmith/singletons/traceable.mjs',
  },
  outdir: join(DIST, 'bundle'),
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  legalComments: 'inline',
  logLevel: 'warning',
})

// Types: tsc writes one .d.ts per module reachable from the entries (tsconfig.build.json).
execFileSync(
  process.execPath,
  [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  {
    cwd: ROOT,
    stdio: 'inherit',
  },
)

// The sources import without extensions (moduleResolution "Bundler"); a user's "NodeNext"
// resolution needs them in the .d.ts files: './x' → './x.js', './dir' → './dir/index.js'.
const TYPES = join(DIST, 'types')
const RELATIVE = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*)\2/g
function withExtension(file, specifier) {
  if (/\.(js|mjs|json)$/.test(specifier)) return specifier
  const base = resolve(dirname(file), specifier)
  if (existsSync(`${base}.d.ts`)) return `${specifier}.js`
  if (existsSync(join(base, 'index.d.ts'))) return `${specifier}/index.js`
  throw new Error(`${relative(ROOT, file)}: cannot resolve ${specifier}`)
}
function visit(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) visit(path)
    else if (name.endsWith('.d.ts')) {
      const text = readFileSync(path, 'utf8')
      const fixed = text.replace(
        RELATIVE,
        (_, before, quote, specifier) =>
          `${before}${quote}${withExtension(path, specifier)}${quote}`,
      )
      if (fixed !== text) writeFileSync(path, fixed)
    }
  }
}
visit(TYPES)

// The decision store's schema, for a user's `migrations_dir` (samples/worker-from-package/).
cpSync(join(ROOT, 'src/review/migrations'), join(DIST, 'migrations'), { recursive: true })
