import { describe, expect, it } from 'vitest'
import { normalizedPath } from '../src/routing'

/** The same normalisation with the path taken from the URL parser: what reading it as text must equal. */
function parsed(url: string): string {
  let path = new URL(url).pathname
  for (let round = 0; round < 4; round++) {
    const decoded = path.replace(/%([0-7][0-9a-f])/gi, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    )
    if (decoded === path) break
    path = decoded
  }
  const segments: string[] = []
  for (const raw of path.replace(/\\/g, '/').split('/')) {
    const segment = raw.split(';')[0]!
    if (segment === '' || segment === '.') continue
    if (segment === '..') segments.pop()
    else segments.push(segment.toLowerCase())
  }
  return `/${segments.join('/')}`
}

describe('normalizedPath', () => {
  const urls = [
    'https://guard.example.com/ask',
    'https://guard.example.com/ASK/?x=1',
    'https://guard.example.com/x/%2e%2e/ask#frag',
    'https://guard.example.com/%2561sk?next=/other/path',
    'https://guard.example.com/ask;jsessionid=1/',
    'https://guard.example.com//ask//',
    'https://guard.example.com',
    'https://guard.example.com?q=/ask',
    'https://guard.example.com:8443/a/b/../c',
    'http://guard.example.com/a%5C..%5Cask',
    'https://guard.example.com/caf%C3%A9/ask',
    'https://guard.example.com/@user/ask',
    'https://guard.example.com/a b/ask',
    'https://guard.example.com/a\\..\\ask',
    'https://guard.example.com/é/ask',
    'https://guard.example.com/ask?',
  ]

  it.each(urls)('%s reads as the URL parser would have it', (url) => {
    expect(normalizedPath(url)).toBe(parsed(url))
    // Again: the second time it comes from what this isolate kept.
    expect(normalizedPath(url)).toBe(parsed(url))
  })

  it("a Request's own URL (serialized) reads the same as its parsed path", () => {
    for (const url of urls) {
      const serialized = new Request(url).url
      expect(normalizedPath(serialized)).toBe(parsed(serialized))
    }
  })

  it('stays right past the number of paths it keeps', () => {
    for (let index = 0; index < 2500; index++) {
      const url = `https://guard.example.com/P${index}/./x/../ask`
      expect(normalizedPath(url)).toBe(`/p${index}/ask`)
    }
    expect(normalizedPath('https://guard.example.com/ASK')).toBe('/ask')
  })

  it('a path longer than it keeps is worked out every time, the same way', () => {
    const long = `https://guard.example.com/${'Segment/'.repeat(64)}./x/../ASK?q=1`
    expect(normalizedPath(long)).toBe(parsed(long))
    expect(normalizedPath(long)).toBe(parsed(long))
  })
})
