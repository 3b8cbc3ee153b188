import { describe, expect, it } from 'vitest'
import {
  ConfigurationError,
  parseJsonPointer,
  readContext,
  readJsonPointer,
  readQuestion,
  replaceAtJsonPointer,
} from '../src'

describe('JSON Pointer (RFC 6901)', () => {
  // The examples of RFC 6901 §5.
  const document = {
    foo: ['bar', 'baz'],
    '': 0,
    'a/b': 1,
    'c%d': 2,
    'e^f': 3,
    'g|h': 4,
    'i\\j': 5,
    'k"l': 6,
    ' ': 7,
    'm~n': 8,
  }

  it.each([
    ['', document],
    ['/foo', ['bar', 'baz']],
    ['/foo/0', 'bar'],
    ['/', 0],
    ['/a~1b', 1],
    ['/c%d', 2],
    ['/e^f', 3],
    ['/g|h', 4],
    ['/i\\j', 5],
    ['/k"l', 6],
    ['/ ', 7],
    ['/m~0n', 8],
  ])('reads %j as the RFC says', (pointer, expected) => {
    expect(readJsonPointer(document, parseJsonPointer(pointer, 'test'))).toEqual(expected)
  })

  it.each([
    '/foo/2',
    '/foo/-',
    '/foo/01',
    '/missing',
    '/foo/0/deeper',
    '/__proto__',
    '/constructor',
  ])('finds nothing at %j', (pointer) => {
    expect(readJsonPointer(document, parseJsonPointer(pointer, 'test'))).toBeUndefined()
  })

  it.each(['question', 'a/b', '/bad~2escape', '/trailing~'])(
    'rejects %j, naming the setting',
    (pointer) => {
      expect(() => parseJsonPointer(pointer, 'context')).toThrow(ConfigurationError)
      expect(() => parseJsonPointer(pointer, 'context')).toThrow(/^context /)
    },
  )

  it('replaces a value without touching the original', () => {
    const original = { data: { answers: [{ text: 'old' }, { text: 'other' }] }, keep: true }
    const replaced = replaceAtJsonPointer(
      original,
      parseJsonPointer('/data/answers/0/text', 'answer'),
      'new',
    )
    expect(replaced).toEqual({
      data: { answers: [{ text: 'new' }, { text: 'other' }] },
      keep: true,
    })
    expect(original.data.answers[0]!.text).toBe('old')
  })

  it('replaces nothing when the pointer refers to nothing', () => {
    expect(replaceAtJsonPointer({ a: 1 }, parseJsonPointer('/b/c', 'answer'), 'x')).toBeUndefined()
  })
})

describe('readContext', () => {
  it('reads a string, strings, and JS or Python LangChain documents', () => {
    expect(readContext('one', '/context')).toEqual({ ok: true, documents: ['one'] })
    expect(readContext(['one', 'two'], '/context')).toEqual({ ok: true, documents: ['one', 'two'] })
    expect(
      readContext(
        [{ pageContent: 'js', metadata: {} }, { page_content: 'py', metadata: {} }, 'plain'],
        '/context',
      ),
    ).toEqual({ ok: true, documents: ['js', 'py', 'plain'] })
  })

  it('drops empty documents; nothing there is no documents (not an error: nothing was retrieved)', () => {
    expect(readContext(['', 'kept', '  '], '/c')).toEqual({ ok: true, documents: ['kept'] })
    for (const nothing of [[], undefined, null, ['', ' ']]) {
      expect(readContext(nothing, '/c')).toEqual({ ok: true, documents: [] })
    }
  })

  it('keeps at most maxDocuments, says it cut, and does not read past them', () => {
    // A wrong item past the limit is never looked at: the reader stops at the limit.
    expect(readContext(['a', '', 'b', 'c', 42], '/c', 2)).toEqual({
      ok: true,
      documents: ['a', 'b'],
      truncated: true,
    })
    expect(readContext(['a', 'b'], '/c', 2)).toEqual({ ok: true, documents: ['a', 'b'] })
  })

  it('names the bad element and what is allowed', () => {
    const result = readContext(['fine', { body: 'wrong key' }], '/docs')
    expect(result).toEqual({
      ok: false,
      reason: 'invalid-context',
      message:
        'context at /docs/1 is an object without pageContent, page_content or content; expected a string, an array of strings, or documents with pageContent, page_content or content',
    })
    expect(readContext(42, '/docs')).toMatchObject({ ok: false, reason: 'invalid-context' })
  })
})

describe('readQuestion', () => {
  it('takes a non-empty string', () => {
    expect(readQuestion('Who?', '/q')).toEqual({ ok: true, question: 'Who?' })
  })

  it.each([
    [undefined, 'no-question'],
    [null, 'no-question'],
    ['   ', 'no-question'],
    [42, 'invalid-question'],
    [['Who?'], 'invalid-question'],
  ])('%j → %s', (value, reason) => {
    expect(readQuestion(value, '/q')).toMatchObject({ ok: false, reason })
  })
})
