/**
 * The guard Worker as it deploys, run locally for the benchmark and the load test: the bundle
 * `wrangler deploy --dry-run` builds, served by workerd through Miniflare.
 */
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { convertV4MiniflareOptions, Miniflare } from 'miniflare'
import { compatibilityDate, compatibilityFlags } from './compatibility'
import { newWorkerd, workerdChildren } from './workerd-process'

export const ROOT = join(import.meta.dirname, '../..')
export const QUIET_ENV = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface BuildOptions {
  /** A Wrangler config other than the project's wrangler.toml (its `main` is relative to it). */
  config?: string
  /** More `wrangler deploy` arguments, e.g. `['--alias', 'a:b']` or `['--metafile', path]`. */
  args?: string[]
}

function deployArgs(outdir: string, options: BuildOptions) {
  return {
    command: join(ROOT, 'node_modules/.bin/wrangler'),
    args: [
      'deploy',
      '--dry-run',
      '--outdir',
      outdir,
      ...(options.config ? ['--config', options.config] : []),
      ...(options.args ?? []),
    ],
    cwd: options.config ? dirname(options.config) : ROOT,
  }
}

function bundleIn(outdir: string): { path: string; raw: number; gzip: number } {
  // wrangler names the bundle after the entry module (worker.js for the guard's src/worker.ts).
  const entry = readdirSync(outdir).filter((name) => name.endsWith('.js'))
  if (entry.length !== 1)
    throw new Error(`expected one bundle in ${outdir}, found ${entry.join(', ')}`)
  const path = join(outdir, entry[0]!)
  const code = readFileSync(path)
  return { path, raw: code.length, gzip: gzipSync(code, { level: 9 }).length }
}

/**
 * Builds the Worker as `wrangler deploy` would, into `outdir`; returns the bundle's path and
 * sizes (minified as the config says; gzip at level 9, about what the upload limit counts).
 */
export function buildBundle(
  outdir: string,
  options: BuildOptions = {},
): { path: string; raw: number; gzip: number } {
  const { command, args, cwd } = deployArgs(outdir, options)
  const built = spawnSync(command, args, { cwd, env: QUIET_ENV, encoding: 'utf8' })
  if (built.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${built.stderr}`)
  return bundleIn(outdir)
}

/** {@link buildBundle}, without blocking: several builds can run at once. */
export function buildBundleAsync(
  outdir: string,
  options: BuildOptions = {},
): Promise<{ path: string; raw: number; gzip: number }> {
  const { command, args, cwd } = deployArgs(outdir, options)
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: QUIET_ENV, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`wrangler deploy --dry-run failed:\n${stderr}`))
      else {
        try {
          resolve(bundleIn(outdir))
        } catch (error) {
          reject(error)
        }
      }
    })
  })
}

export interface LocalWorkerOptions {
  /** The Worker's name (the inspector's target is `/core:user:<name>`). */
  name?: string
  /** Open workerd's inspector on this port (0: any free port). */
  inspectorPort?: number
  /**
   * Run workerd through a wrapper (MINIFLARE_WORKERD_PATH), such as valgrind, and the command
   * name its process shows.
   */
  workerd?: { path: string; command: string }
  /** Miniflare's Cache API simulator; `false` makes the Cache API a no-op. @default true */
  cache?: boolean
  /**
   * Receives every line the Worker logs (console.log and friends), with warnings and errors as
   * 'stderr'. When set, the output comes here and is not printed; by default Miniflare prints it.
   */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
}

export interface LocalWorker {
  url: string
  /** The workerd process serving this Worker (alone in it, with Miniflare's own services). */
  pid: number
  miniflare: Miniflare
  dispose(): Promise<void>
}

/** Serves the built bundle on a free loopback port with these bindings. */
export async function startLocalWorker(
  bundlePath: string,
  bindings: Record<string, unknown>,
  options: LocalWorkerOptions = {},
): Promise<LocalWorker> {
  const command = options.workerd?.command ?? 'workerd'
  const before = workerdChildren(process.pid, command)
  const { onLine } = options
  // Miniflare reads the binary's path from the environment when it spawns workerd.
  const workerdPath = process.env.MINIFLARE_WORKERD_PATH
  if (options.workerd) process.env.MINIFLARE_WORKERD_PATH = options.workerd.path
  // Miniflare 5 takes its options in a new shape; convertV4MiniflareOptions is its own mapping
  // from the single-Worker shape these scripts describe.
  const worker = new Miniflare(
    convertV4MiniflareOptions({
      ...(options.name !== undefined ? { name: options.name } : {}),
      modules: true,
      scriptPath: bundlePath,
      modulesRoot: join(bundlePath, '..'),
      compatibilityDate,
      compatibilityFlags,
      host: '127.0.0.1',
      port: await freePort(),
      bindings: bindings as Record<string, string>,
      // Miniflare 5 names it cacheAPI (a v4 `cache` key is dropped without a word).
      cacheAPI: options.cache ?? true,
      ...(options.inspectorPort !== undefined ? { inspectorPort: options.inspectorPort } : {}),
      // workerd writes every console line as a structured log (level + message).
      ...(onLine
        ? {
            handleStructuredLogs: ({ level, message }: { level: string; message: string }) =>
              onLine(message, level === 'error' || level === 'warn' ? 'stderr' : 'stdout'),
          }
        : {}),
    }),
  )
  let url: string
  try {
    url = (await worker.ready).origin
  } finally {
    if (options.workerd) {
      if (workerdPath === undefined) delete process.env.MINIFLARE_WORKERD_PATH
      else process.env.MINIFLARE_WORKERD_PATH = workerdPath
    }
  }
  return {
    url,
    pid: newWorkerd(before, command),
    miniflare: worker,
    dispose: () => worker.dispose(),
  }
}

export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
