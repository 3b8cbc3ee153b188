import { ConfigurationError } from '../errors'
import { hmacHex, hmacKey, listDigest, sha256Hex } from '../hash'
import { integer } from '../settings'
import type { JudgeScore } from './judge'

/** How long a score is kept; 0 turns the verdict cache off (the Worker's CACHE_TTL_SECONDS). */
export const CACHE_TTL_SECONDS = integer(0, 31_536_000, {
  unit: 'seconds; 0 turns the cache off',
  env: 'CACHE_TTL_SECONDS',
  default: 3600,
})

/**
 * A cache of judge scores. Only scores are stored, never failures: a judge that was down must
 * be asked again. The verdict is not stored either; it is decided from the score with the
 * thresholds in force, so changing a threshold takes effect at once.
 */
export interface VerdictCache {
  get(key: string): Promise<JudgeScore | undefined>
  put(key: string, score: JudgeScore): Promise<void>
}

/** What is kept of a score (latency, usage and requests belong to the call that made it). */
function stored(score: JudgeScore): Omit<JudgeScore, 'latencyMs' | 'usage'> {
  const { latencyMs: _latency, usage: _usage, ...rest } = score
  if (rest.estimator !== 'sampling') return rest
  const { requests: _requests, ...sampled } = rest
  return sampled as typeof rest
}

function revived(value: unknown): JudgeScore | undefined {
  const score = value as Partial<JudgeScore> | null
  if (
    !score ||
    score.ok !== true ||
    typeof score.score !== 'number' ||
    score.score < 0 ||
    score.score > 1 ||
    (score.estimator !== 'logprobs' && score.estimator !== 'sampling')
  )
    return undefined
  return { ...(score as JudgeScore), latencyMs: 0 }
}

/** Everything a cached score depends on. */
export interface CacheKeyParts {
  /** The judge's identity (endpoint, model, settings) and prompt version: another judge never reads these scores. */
  judge: string
  promptVersion: string
  /**
   * How the score was estimated: a judge with `auto` gives logprobs scores, then sampling ones,
   * and a score is only read back for the estimator that made it. @default 'logprobs'
   */
  estimator?: 'logprobs' | 'sampling'
  /** Whose score it is, with a cache scoped per caller; empty when shared. */
  scope?: string
  /** The check asked; a sufficiency score never answers a groundedness question. */
  check?: string
  question: string
  history?: readonly { role: string; content: string }[]
  documents: readonly string[]
  /** The answer checked, for groundedness. */
  answer?: string
}

/**
 * The key: SHA-256 over every part, the documents by their digest (shared with the decision log,
 * so they are hashed once per request). A new prompt version, another judge, estimator or caller
 * never reads old scores.
 */
export async function cacheKey(parts: CacheKeyParts): Promise<string> {
  return sha256Hex(
    JSON.stringify([
      parts.promptVersion,
      parts.judge,
      parts.check ?? 'sufficiency',
      parts.estimator ?? 'logprobs',
      parts.scope ?? '',
      parts.question,
      parts.history ?? [],
      await listDigest(parts.documents),
      parts.answer ?? null,
    ]),
  )
}

/** Cache failures are logged and treated as misses: a cache never fails a request. */
function logged(operation: string, error: unknown): undefined {
  console.error(
    JSON.stringify({
      message: `RAG Guard: verdict cache ${operation} failed`,
      error: String(error),
    }),
  )
  return undefined
}

// The Workers bindings below are typed by what the caches use of them, so that the package's
// types need no Workers globals in a Node project; a Workers `Cache` or `KVNamespace` fits.

/** What the Cache API store uses of a Workers `Cache`. */
export interface CacheLike {
  match(request: string): Promise<Response | undefined>
  put(request: string, response: Response): Promise<void>
}

/** What the KV store uses of a Workers `KVNamespace`. */
export interface KVNamespaceLike {
  get(key: string, type: 'json'): Promise<unknown>
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>
}

export interface CacheApiStoreOptions {
  /**
   * A secret the entries' URLs are derived from (HMAC-SHA256): the Cache API of a zone is shared
   * by every Worker on it, and without the secret no other Worker can find or forge an entry.
   */
  secret: string
  /** The cache to use. @default caches.open('rag-guard') (a named cache of its own, not caches.default) */
  cache?: CacheLike | Promise<CacheLike>
}

/**
 * The Workers Cache API, in the data center that serves the request, in a named cache of its
 * own. Note that it stores nothing on `*.workers.dev` hosts; use a KV namespace there.
 * @see https://developers.cloudflare.com/workers/runtime-apis/cache/
 */
export function cacheApiStore(ttlSeconds: number, options: CacheApiStoreOptions): VerdictCache {
  if (typeof options?.secret !== 'string' || options.secret.length === 0) {
    throw new ConfigurationError(
      'cacheApiStore requires a "secret": the Cache API is shared by every Worker of the zone',
      'secret',
    )
  }
  let cache: Promise<CacheLike> | undefined
  const opened = () => (cache ??= Promise.resolve(options.cache ?? caches.open('rag-guard')))
  const signing = hmacKey(options.secret)
  // The cache is keyed by URL; this host is never fetched.
  const url = async (key: string) =>
    `https://rag-guard-verdict-cache.internal/${await hmacHex(await signing, key)}`
  return {
    async get(key) {
      try {
        const hit = await (await opened()).match(await url(key))
        return hit ? revived(await hit.json()) : undefined
      } catch (error) {
        return logged('read', error)
      }
    },
    async put(key, score) {
      try {
        const response = Response.json(stored(score), {
          headers: { 'cache-control': `max-age=${ttlSeconds}` },
        })
        await (await opened()).put(await url(key), response)
      } catch (error) {
        logged('write', error)
      }
    },
  }
}

/** KV's shortest expiry. */
const KV_MIN_TTL_SECONDS = 60

export interface KvStoreOptions {
  /**
   * A secret the entries' keys are derived from (HMAC-SHA256), so that deployments sharing one
   * namespace (say, with different judge keys) never read each other's scores.
   */
  secret?: string
}

/**
 * A Workers KV namespace: shared by every data center, eventually consistent (a new entry can
 * take up to a minute to be seen elsewhere).
 * @see https://developers.cloudflare.com/kv/api/write-key-value-pairs/
 */
export function kvStore(
  namespace: KVNamespaceLike,
  ttlSeconds: number,
  options: KvStoreOptions = {},
): VerdictCache {
  const signing = options.secret ? hmacKey(options.secret) : undefined
  const name = async (key: string) => (signing ? hmacHex(await signing, key) : key)
  return {
    async get(key) {
      try {
        return revived(await namespace.get(await name(key), 'json'))
      } catch (error) {
        return logged('read', error)
      }
    },
    async put(key, score) {
      try {
        await namespace.put(await name(key), JSON.stringify(stored(score)), {
          expirationTtl: Math.max(ttlSeconds, KV_MIN_TTL_SECONDS),
        })
      } catch (error) {
        logged('write', error)
      }
    },
  }
}
