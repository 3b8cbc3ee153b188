/**
 * What `npm run demo` says of the review page. With `--once` the Workers and their local D1 are
 * gone when it is printed: no address (and no token) of a server that no longer answers.
 */
import { describe, expect, it } from 'vitest'
import { reviewPageNote, tryItNote } from '../../samples/local-store'

const url = 'http://127.0.0.1:8787'
const token = 'operator-token-for-the-demo'

describe('the demo’s review page note', () => {
  it('kept running: the page’s address and the operator token to sign in with', () => {
    const note = reviewPageNote(url, token, false)
    expect(note).toContain(`${url}/_guard/review`)
    expect(note).toContain(token)
  })

  it('with --once: neither the address nor the token of the stopped server, but how to keep it', () => {
    const note = reviewPageNote(url, token, true)
    expect(note).not.toContain(url)
    expect(note).not.toContain(token)
    expect(note).toContain('run `npm run demo` without --once')
  })
})

describe('the demo’s closing note', () => {
  it('reads the labels with a command that runs from a clone (the bin is the built package)', () => {
    const note = tryItNote(url, 'caller-token', token)
    expect(note).toContain(
      `RAG_GUARD_TOKEN=${token} npm run rag-guard -- calibrate ${url}/_guard/labels.jsonl`,
    )
    expect(note).not.toContain('npx rag-guard')
  })
})
