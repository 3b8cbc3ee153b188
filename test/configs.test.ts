import { parse } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import { parseConfig, type GuardEnv } from '../src/config'
import rootConfig from '../wrangler.toml?raw'

const samples = import.meta.glob<string>('../samples/configs/*.toml', {
  query: '?raw',
  import: 'default',
  eager: true,
})
const benchWorkers = import.meta.glob<string>('./bench/workers/*.toml', {
  query: '?raw',
  import: 'default',
  eager: true,
})

describe('the shipped Worker configurations', () => {
  const files = { 'wrangler.toml': rootConfig, ...samples }

  it('run on the runtime the guard deploys on: the same compatibility date and flags', () => {
    const runtime = (toml: string) => {
      const { compatibility_date, compatibility_flags } = parse(toml)
      return { compatibility_date, compatibility_flags }
    }
    const expected = runtime(rootConfig)
    // The benchmark's floor Workers too: they are compared with the guard.
    for (const [path, toml] of Object.entries({ ...samples, ...benchWorkers }))
      expect({ path, ...runtime(toml) }).toEqual({ path, ...expected })
  })

  it('include the provider examples', () => {
    expect(
      Object.keys(samples)
        .map((path) => path.split('/').pop())
        .sort(),
    ).toEqual([
      'ai-gateway.toml',
      'azure-openai.toml',
      'openai.toml',
      'reasoning-sampling.toml',
      'self-hosted.toml',
      'workers-ai.toml',
    ])
  })

  it('the reasoning model and Workers AI examples judge by sampling', () => {
    const judgeOf = (name: string) => {
      const toml = parse(samples[`../samples/configs/${name}`]!) as { vars: GuardEnv }
      return parseConfig({
        OPENAI_API_KEY: 'sk-placeholder',
        GUARD_TOKENS: 'placeholder-token-0123456789',
        ...toml.vars,
      }).judge
    }
    expect(judgeOf('reasoning-sampling.toml')).toMatchObject({
      model: 'gpt-5-mini',
      estimator: 'sampling',
      samples: 5,
      reasoningEffort: 'minimal',
    })
    expect(judgeOf('workers-ai.toml')).toMatchObject({
      baseURL: expect.stringMatching(
        /^https:\/\/api\.cloudflare\.com\/client\/v4\/accounts\/.+\/ai\/v1$/,
      ),
      estimator: 'sampling',
    })
  })

  it.each(Object.entries(files))(
    '%s is valid: it names the guard Worker and its settings pass validation',
    (_, text) => {
      const toml = parse(text) as { main?: string; vars?: GuardEnv }
      expect(toml.main).toBe('src/worker.ts')
      // Secrets are not in the file: set them as `wrangler secret put` would.
      const config = parseConfig({
        OPENAI_API_KEY: 'sk-placeholder',
        GUARD_TOKENS: 'placeholder-token-0123456789',
        CACHE_SECRET: 'placeholder-cache-secret',
        ...toml.vars,
      })
      expect(config.routes.length).toBeGreaterThan(0)
      expect(config.upstream.url.protocol).toMatch(/^https?:$/)
    },
  )
})
