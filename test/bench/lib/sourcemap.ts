/** Positions in a bundle mapped back to their source file (and package), from its source map. */
import { readFileSync } from 'node:fs'
import { decodeMappings, packageOf } from './bundle-breakdown'

export interface SourcePosition {
  source: string
  package: string
  line: number
}

export class SourceMapLookup {
  #lines: number[][][]
  #sources: string[]

  constructor(bundlePath: string) {
    const map = JSON.parse(readFileSync(`${bundlePath}.map`, 'utf8')) as {
      sources: string[]
      mappings: string
    }
    this.#lines = decodeMappings(map.mappings)
    this.#sources = map.sources.map((source) =>
      source.replace(/^(\.\.\/)+/, '').replace(/^.*?(node_modules\/|src\/|test\/)/, '$1'),
    )
  }

  /** The source of a generated position (0-based line and column). */
  find(line: number, column: number): SourcePosition | undefined {
    const segments = this.#lines[line]
    if (!segments || segments.length === 0) return undefined
    let low = 0
    let high = segments.length - 1
    while (low < high) {
      const middle = (low + high + 1) >> 1
      if (segments[middle]![0]! <= column) low = middle
      else high = middle - 1
    }
    const segment = segments[low]!
    if (segment.length < 4 || segment[0]! > column) return undefined
    const source = this.#sources[segment[1]!]!
    return { source, package: packageOf(source), line: segment[2]! + 1 }
  }
}
