/**
 * The command line as `rag-guard` reads it: each command's flags, checked before anything runs,
 * with every mistake reported as one line that names the flag and what it takes (exit 2), never
 * as `node:util`'s `ERR_PARSE_ARGS_*` with a stack trace.
 */
import { statSync } from 'node:fs'
import { parseArgs } from 'node:util'

/** A mistake in the command line: reported as one line, with a pointer to the command's help. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

type Flags = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>

export interface CommandLine<F extends Flags> {
  command: string
  flags: F
  /** How many positional arguments the command takes, and what to say when it gets others. */
  positionals: { count: number; message: string }
  /** The command's usage: the `<value>` written after each flag there names what it takes. */
  usage: string
}

/** `true` when the arguments ask for help: `--help` or `-h`, before any `--`. */
export function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h')
}

/** What a flag takes, as its usage writes it (`--out <file>` → `<file>`). */
function valueOf(usage: string, name: string): string {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return new RegExp(`--${escaped} (<[^>]+>)`).exec(usage)?.[1] ?? '<value>'
}

/** A negative number is a value, not a flag: `--concurrency -3` is then refused for its sign. */
const NUMBER = /^-(\d|\.\d)/

/**
 * Parses one command's arguments. Flags are checked here, one by one and in order, so that the
 * first mistake is reported in the user's terms: an unknown flag, a flag without its value, a
 * value given to a switch, or the wrong number of positional arguments. `node:util`'s parser then
 * reads what is known to be well-formed.
 */
export function parseCommand<F extends Flags>(line: CommandLine<F>, args: readonly string[]) {
  const fail = (message: string) => new UsageError(message)
  const normalized: string[] = []
  const positionals: string[] = []
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!
    if (arg === '--') {
      positionals.push(...args.slice(index + 1))
      normalized.push(...args.slice(index))
      break
    }
    if (!arg.startsWith('-') || arg === '-' || NUMBER.test(arg)) {
      positionals.push(arg)
      normalized.push(arg)
      continue
    }
    const [flag, inline] = splitFlag(arg)
    const name = flag.replace(/^--?/, '')
    const known = flag.startsWith('--') ? line.flags[name] : undefined
    if (!known) throw fail(`${flag} is not an option of ${line.command}`)
    if (known.type === 'boolean') {
      if (inline !== undefined) throw fail(`${flag} takes no value, got ${JSON.stringify(inline)}`)
      normalized.push(arg)
      continue
    }
    if (inline !== undefined) {
      normalized.push(arg)
      continue
    }
    const next = args[index + 1]
    if (next === undefined || (next.startsWith('-') && next !== '-' && !NUMBER.test(next)))
      throw fail(`${flag} needs a value: ${flag} ${valueOf(line.usage, name)}`)
    normalized.push(`${flag}=${next}`)
    index++
  }
  if (positionals.length !== line.positionals.count)
    throw fail(
      `${line.positionals.message}${positionals.length ? ` (got ${positionals.map((value) => JSON.stringify(value)).join(', ')})` : ''}`,
    )
  return parseArgs({
    args: normalized,
    options: line.flags,
    allowPositionals: true,
    strict: true,
  })
}

function splitFlag(arg: string): [string, string | undefined] {
  const equals = arg.indexOf('=')
  return equals === -1 ? [arg, undefined] : [arg.slice(0, equals), arg.slice(equals + 1)]
}

/**
 * Refuses a directory where a file is wanted (the input, `--out`, `--report`), before anything
 * is read or written: Node would otherwise fail with `EISDIR` midway. A path that does not exist
 * yet is fine (an output is created; a missing input is reported when it is read).
 */
export function refuseDirectory(what: string, path: string): void {
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`${what} ${path} is a directory; give a file`)
}
