/**
 * Where `rag-guard calibrate` reads its input: a file, or an http(s) URL — the review page's
 * labels export, fetched with an operator token. The token comes from the environment, never
 * from the command line (where `ps` and shell history would keep it).
 */
import { readFileSync } from 'node:fs'
import { DataError } from './data'

/** The environment variable that holds the operator token, unless `--token-env` names another. */
export const TOKEN_ENV = 'RAG_GUARD_TOKEN'

export interface SourceOptions {
  /** An operator token (GUARD_OPERATOR_TOKENS) for URLs. */
  token?: string
  /** The header that carries it, as the guard's GUARD_TOKEN_HEADER. @default 'authorization' */
  tokenHeader?: string
  fetch?: typeof fetch
}

export const isUrl = (location: string) => /^https?:\/\//i.test(location)
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

/** The text at `location`: a file's, or a URL's (2xx only). Failures are `DataError`s that say what to do. */
export async function readSource(location: string, options: SourceOptions = {}): Promise<string> {
  if (!isUrl(location)) return readFileSync(location, 'utf8')
  const url = new URL(location)
  const headers = new Headers({ accept: 'application/jsonl, application/json, */*' })
  if (options.token) {
    // A token never travels in clear text beyond this machine.
    if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
      throw new DataError(
        `${location}: refusing to send the operator token over plain http to another host; use https`,
      )
    }
    const header = options.tokenHeader ?? 'authorization'
    headers.set(
      header,
      header.toLowerCase() === 'authorization' ? `Bearer ${options.token}` : options.token,
    )
  }
  let response: Response
  try {
    response = await (options.fetch ?? fetch)(url, { headers, redirect: 'error' })
  } catch (error) {
    throw new DataError(`${location}: could not be fetched (${(error as Error).message})`)
  }
  if (!response.ok) {
    const hint =
      response.status === 401 || response.status === 403
        ? `: set ${TOKEN_ENV} (or the variable --token-env names) to an operator token`
        : ''
    throw new DataError(`${location} answered ${response.status}${hint}`)
  }
  return response.text()
}
