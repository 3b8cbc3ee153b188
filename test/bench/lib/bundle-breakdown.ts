/**
 * What a Worker bundle is made of, by package: minified bytes from esbuild's metafile
 * (`bytesInOutput`), and an estimate of each package's gzip share: the bundle's text that the
 * source map attributes to the package, gzipped on its own (the parts' sum exceeds the whole,
 * since gzip shares no dictionary between them).
 */
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Source-map "mappings": per generated line, segments [column, source, line, column, name?]. */
export function decodeMappings(mappings: string): number[][][] {
  const lines: number[][][] = []
  let source = 0
  let sourceLine = 0
  let sourceColumn = 0
  let name = 0
  for (const line of mappings.split(';')) {
    const segments: number[][] = []
    let column = 0
    for (const text of line.split(',')) {
      if (!text) continue
      const values: number[] = []
      let value = 0
      let shift = 0
      for (const char of text) {
        const digit = BASE64.indexOf(char)
        value += (digit & 31) << shift
        if (digit & 32) shift += 5
        else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1)
          value = 0
          shift = 0
        }
      }
      column += values[0]!
      const segment = [column]
      if (values.length >= 4) {
        source += values[1]!
        sourceLine += values[2]!
        sourceColumn += values[3]!
        segment.push(source, sourceLine, sourceColumn)
        if (values.length >= 5) name += values[4]!
      }
      segments.push(segment)
    }
    lines.push(segments)
  }
  return lines
}

/** The package an input path belongs to; the guard's own code is `src (RAG Guard)`. */
export function packageOf(path: string): string {
  const match = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)(\/.*)?$/)
  if (!match) {
    if (/(^|\/)src\//.test(path)) return 'src (RAG Guard)'
    if (/(^|\/)test\//.test(path)) return 'test (benchmark Worker)'
    return path
  }
  if (match[1] === 'zod' && match[2]?.includes('/locales/')) return 'zod (locales)'
  return match[1]!
}

export interface PackageShare {
  name: string
  minified: number
  gzip: number
}

export function bundleBreakdown(bundlePath: string, metafilePath: string): PackageShare[] {
  const meta = JSON.parse(readFileSync(metafilePath, 'utf8')) as {
    outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>
  }
  const output = Object.entries(meta.outputs).find(([name]) => name.endsWith('.js'))![1]
  const minified = new Map<string, number>()
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = packageOf(input)
    minified.set(name, (minified.get(name) ?? 0) + bytesInOutput)
  }

  const code = readFileSync(bundlePath, 'utf8').split('\n')
  const map = JSON.parse(readFileSync(`${bundlePath}.map`, 'utf8')) as {
    sources: string[]
    mappings: string
  }
  const sourcePackage = map.sources.map(packageOf)
  const texts = new Map<string, string[]>()
  decodeMappings(map.mappings).forEach((segments, lineIndex) => {
    const line = code[lineIndex] ?? ''
    segments.forEach((segment, index) => {
      const end = segments[index + 1]?.[0] ?? line.length
      const name = segment.length > 1 ? sourcePackage[segment[1]!]! : '(unmapped)'
      const parts = texts.get(name) ?? []
      parts.push(line.slice(segment[0], end))
      texts.set(name, parts)
    })
  })
  const names = new Set([...minified.keys(), ...texts.keys()])
  return [...names]
    .map((name) => ({
      name,
      minified: minified.get(name) ?? 0,
      gzip: texts.has(name) ? gzipSync(texts.get(name)!.join(''), { level: 9 }).length : 0,
    }))
    .filter((share) => share.minified > 0 || share.gzip > 200)
    .sort((a, b) => b.minified - a.minified)
}
