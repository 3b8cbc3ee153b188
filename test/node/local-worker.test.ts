// The benchmark and the review/node tests serve bundles through test/support/local-worker.ts.
// Its `cache: false` must reach Miniflare: with the Cache API simulator on, every guarded request
// also runs a Durable Object writing to disk in the same workerd process, and the benchmark
// counts that CPU as the guard's (Miniflare 5 renamed the option; the old key was dropped).
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startLocalWorker } from '../support/local-worker'

const dir = mkdtempSync(join(tmpdir(), 'rag-guard-local-worker-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const bundle = join(dir, 'cache-probe.mjs')
writeFileSync(
  bundle,
  `export default {
  async fetch() {
    const key = new Request('https://cache.test/entry')
    await caches.default.put(key, new Response('stored', { headers: { 'cache-control': 'max-age=60' } }))
    const hit = await caches.default.match(key)
    return new Response(hit ? 'hit' : 'miss')
  },
}`,
)

describe('startLocalWorker', () => {
  it.each([
    [false, 'miss'],
    [true, 'hit'],
  ])('cache: %s gives a Cache API that answers %s', async (cache, expected) => {
    const worker = await startLocalWorker(bundle, {}, { cache })
    try {
      expect(await (await fetch(worker.url)).text()).toBe(expected)
    } finally {
      await worker.dispose()
    }
  })

  // The benchmark's instructions phase runs workerd under valgrind this way.
  it('runs workerd through a wrapper when asked, and leaves the environment as it was', async () => {
    const fromMiniflare = createRequire(fileURLToPath(import.meta.resolve('miniflare')))
    const workerd = (fromMiniflare('workerd') as { default: string }).default
    const marker = join(dir, 'wrapper-ran')
    const wrapper = join(dir, 'workerd-wrapper')
    writeFileSync(wrapper, `#!/bin/sh\ntouch "${marker}"\nexec "${workerd}" "$@"\n`)
    chmodSync(wrapper, 0o755)
    const before = process.env.MINIFLARE_WORKERD_PATH
    const worker = await startLocalWorker(
      bundle,
      {},
      { cache: false, workerd: { path: wrapper, command: 'workerd' } },
    )
    try {
      expect(existsSync(marker)).toBe(true)
      expect(worker.pid).toBeGreaterThan(0)
      expect(await (await fetch(worker.url)).text()).toBe('miss')
      expect(process.env.MINIFLARE_WORKERD_PATH).toBe(before)
    } finally {
      await worker.dispose()
    }
  })
})
