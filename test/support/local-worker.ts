/**
 * The guard Worker as it deploys, run locally for the benchmark and the load test: the bundle
 * `wrangler deploy --dry-run` builds, served by workerd through Miniflare.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { Miniflare } from 'miniflare'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
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

/** Builds the Worker as `wrangler deploy` would, into `outdir`; returns the bundle's path and sizes. */
export function buildBundle(outdir: string): { path: string; raw: number; gzip: number } {
  const built = spawnSync(
    join(ROOT, 'node_modules/.bin/wrangler'),
    ['deploy', '--dry-run', '--outdir', outdir],
    { cwd: ROOT, env: QUIET_ENV, encoding: 'utf8' },
  )
  if (built.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${built.stderr}`)
  const path = join(outdir, 'worker.js')
  const code = readFileSync(path)
  return { path, raw: code.length, gzip: gzipSync(code, { level: 9 }).length }
}

/** Serves the built bundle on a free loopback port with these bindings. */
export async function startLocalWorker(
  bundlePath: string,
  bindings: Record<string, unknown>,
): Promise<{ url: string; dispose(): Promise<void> }> {
  const worker = new Miniflare({
    modules: true,
    scriptPath: bundlePath,
    modulesRoot: join(bundlePath, '..'),
    compatibilityDate: '2026-04-01',
    compatibilityFlags: ['enable_request_signal'],
    host: '127.0.0.1',
    port: await freePort(),
    bindings: bindings as Record<string, string>,
  })
  const url = (await worker.ready).origin
  return { url, dispose: () => worker.dispose() }
}

export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
