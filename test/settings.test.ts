import { describe, expect, it } from 'vitest'
import { ConfigurationError } from '../src'
import { boolean, check, choice, fraction, headerMap, integer, text } from '../src/settings'

describe('setting definitions', () => {
  it('an integer names its unit and range, and refuses fractions, strings in code, and out-of-range values', () => {
    const bytes = integer(1024, 4096, { unit: 'bytes' })
    expect(check('Owner', 'size', bytes, 2048)).toBe(2048)
    for (const value of [1023, 4097, 1500.5, '2048', Number.NaN]) {
      expect(() => check('Owner', 'size', bytes, value)).toThrow(
        /^Owner: "size" must be an integer \(bytes\) from 1024 to 4096, got /,
      )
    }
  })

  it('from the environment, numbers and booleans may be strings', () => {
    expect(integer(1, 10).fromEnv.parse('7')).toBe(7)
    expect(integer(1, 10).fromEnv.parse(' 7 ')).toBe(7)
    expect(fraction().fromEnv.parse('0.25')).toBe(0.25)
    expect(boolean().fromEnv.parse('false')).toBe(false)
    expect(integer(1, 10).fromEnv.safeParse('seven').success).toBe(false)
    // A string setting keeps a numeric-looking value as text.
    expect(text().fromEnv.parse('42')).toBe('42')
  })

  it('a choice lists what is allowed', () => {
    expect(() => check('Owner', 'mode', choice(['a', 'b', 'c']), 'd')).toThrow(
      'Owner: "mode" must be "a", "b" or "c", got "d"',
    )
  })

  it('a default fills in for undefined, never for a wrong value', () => {
    const ttl = integer(0, 10, { default: 5 })
    expect(check('Owner', 'ttl', ttl, undefined)).toBe(5)
    expect(() => check('Owner', 'ttl', ttl, null)).toThrow(ConfigurationError)
  })

  it('a secret’s value is never repeated in a message', () => {
    const key = text({ secret: true })
    let message = ''
    try {
      check('Owner', 'apiKey', key, 12345)
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toBe('Owner: "apiKey" must be a string')
    expect(headerMap().fromEnv.parse('{"x-a":"1"}')).toEqual({ 'x-a': '1' })
    expect(headerMap().fromEnv.safeParse('{"x-a":1}').success).toBe(false)
  })
})
