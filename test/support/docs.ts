/**
 * The documentation as the tests read it: README.md and docs/**\/*.md, their links and anchors,
 * and their code blocks with the markers docs/README.md defines ("Checked examples").
 *
 * A ```ts block is compiled against the installed package (test/package/) unless the line before
 * it is `<!-- ts: fragment -->`. A ```sh block is preceded by one of
 * `<!-- sh: needs-account -->` (not run: it needs a Cloudflare account, a model provider's key
 * or a deployed guard), `<!-- sh: ci -->` (each command is a step of `.ci/run`) or
 * `<!-- sh: tested <id> -->` (a test runs it, read from the page by `shellExample(id)`).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

export const ROOT = join(import.meta.dirname, '../..')

/** The documentation pages, relative to the root: README.md, then docs/ in order. */
export function docPages(): string[] {
  const pages: string[] = []
  const visit = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) visit(path)
      else if (entry.name.endsWith('.md')) pages.push(path)
    }
  }
  visit('docs')
  return ['README.md', ...pages]
}

/** Pages whose links must resolve too, beyond the documentation: the samples' READMEs. */
export function samplePages(): string[] {
  return readdirSync(join(ROOT, 'samples'), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name === 'README.md')
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)))
    .sort()
}

export const readPage = (page: string) => readFileSync(join(ROOT, page), 'utf8')

export interface CodeBlock {
  page: string
  /** 1-based line of the opening fence. */
  line: number
  lang: string
  /** The marker comment right above the fence (`ts: fragment`, `sh: ci`, …), if any. */
  marker: string | undefined
  code: string
}

/** Every fenced code block of a page, de-indented (blocks inside list items are indented). */
export function codeBlocks(page: string, text = readPage(page)): CodeBlock[] {
  const lines = text.split('\n')
  const blocks: CodeBlock[] = []
  for (let index = 0; index < lines.length; index++) {
    const open = /^( *)```(\S*)\s*$/.exec(lines[index]!)
    if (!open) continue
    const [, indent, lang] = open
    let end = index + 1
    while (end < lines.length && lines[end] !== `${indent}\`\`\``) end++
    let above = index - 1
    while (above >= 0 && lines[above]!.trim() === '') above--
    const marker = /^\s*<!--\s*(.+?)\s*-->\s*$/.exec(lines[above] ?? '')?.[1]
    const code = lines
      .slice(index + 1, end)
      .map((line) => line.slice(indent!.length))
      .join('\n')
    blocks.push({ page, line: index + 1, lang: lang!, marker, code })
    index = end
  }
  return blocks
}

/** Every ```ts example of README.md and docs/ that is meant to compile, as its own module. */
export function typeScriptExamples(): CodeBlock[] {
  return docPages()
    .flatMap((page) => codeBlocks(page))
    .filter((block) => block.lang === 'ts' && block.marker !== 'ts: fragment')
}

/** The ```sh block marked `<!-- sh: tested <id> -->`: what a test runs is the page's own text. */
export function shellExample(id: string): CodeBlock {
  const found = docPages()
    .flatMap((page) => codeBlocks(page))
    .filter((block) => block.lang === 'sh' && block.marker === `sh: tested ${id}`)
  if (found.length !== 1) throw new Error(`${found.length} shell examples marked "tested ${id}"`)
  return found[0]!
}

/**
 * GitHub's anchor for a heading: lower case, the Markdown of inline code and links dropped,
 * every character but letters, digits, spaces, hyphens and underscores removed, spaces to
 * hyphens; a repeated anchor gets -1, -2, ….
 */
export function anchors(text: string): Set<string> {
  const found = new Set<string>()
  const seen = new Map<string, number>()
  let fence = false
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) fence = !fence
    const heading = fence ? null : /^#{1,6} +(.+?) *#*$/.exec(line)
    if (!heading) continue
    const slug = heading[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    found.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return found
}

export interface Link {
  page: string
  line: number
  target: string
}

/** The links and images of a page outside code: `[text](target)`, `![alt](target)`. */
export function links(page: string, text = readPage(page)): Link[] {
  const found: Link[] = []
  let fence = false
  text.split('\n').forEach((line, index) => {
    if (/^\s*```/.test(line)) fence = !fence
    if (fence) return
    const prose = line.replace(/`[^`]*`/g, '')
    for (const match of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g))
      found.push({ page, line: index + 1, target: match[1]! })
  })
  return found
}
