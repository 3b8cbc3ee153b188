/**
 * Fresh user projects for the package tests: the packed tarball installed with the latest
 * releases of what a user installs beside it, from the npm registry (through npm's cache).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { typeScriptExamples } from '../support/docs'
import { freePort } from '../support/local-worker'

export const ROOT = join(import.meta.dirname, '../..')
export const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')

export const QUIET_ENV = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
}

export interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs a command to its end; never throws on a non-zero exit (the test looks at `code`). */
export async function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number },
): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(command, args, {
      cwd: options.cwd,
      env: options.env ?? QUIET_ENV,
      timeout: options.timeout ?? 300_000,
      maxBuffer: 64 * 1024 * 1024,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string }
    return {
      code: typeof failed.code === 'number' ? failed.code : 1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? String(error),
    }
  }
}

/** Like `run`, but a failure throws with what the command said. */
export async function must(...args: Parameters<typeof run>): Promise<Run> {
  const result = await run(...args)
  if (result.code !== 0)
    throw new Error(
      `${args[0]} ${args[1].join(' ')} failed (${result.code}):\n${result.stdout}\n${result.stderr}`,
    )
  return result
}

/** A new project folder with `files` written and `packages` installed by `npm install`. */
export async function makeProject(
  dir: string,
  packages: string[],
  files: Record<string, string> = {},
): Promise<string> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'user-project', private: true, type: 'module' }, null, 2),
  )
  writeFiles(dir, files)
  await must(NPM, ['install', '--no-audit', '--no-fund', '--loglevel=error', ...packages], {
    cwd: dir,
    timeout: 600_000,
  })
  return dir
}

export function writeFiles(dir: string, files: Record<string, string>) {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
}

/** The repository's TypeScript over a project's tsconfig: its diagnostics ('' when clean). */
export async function typeCheck(dir: string, tsconfig: string): Promise<string> {
  const result = await run(process.execPath, [TSC, '-p', tsconfig, '--pretty', 'false'], {
    cwd: dir,
  })
  return result.code === 0 ? '' : `${result.stdout}${result.stderr}`
}

export interface DevServer {
  origin: string
  output(): string
  stop(): Promise<void>
}

/**
 * `wrangler dev` of a project (the user's own wrangler), serving in local workerd; resolves once
 * it answers HTTP. Stopped with its whole process group.
 */
export async function wranglerDev(
  dir: string,
  config: string,
  vars: Record<string, string>,
  extra: string[] = [],
): Promise<DevServer> {
  const port = await freePort()
  const args = ['dev', '--config', config, '--ip', '127.0.0.1', '--port', String(port)]
  args.push('--inspector-port', String(await freePort()), ...extra)
  for (const [name, value] of Object.entries(vars)) args.push('--var', `${name}:${value}`)
  const child: ChildProcess = spawn(join(dir, 'node_modules/.bin/wrangler'), args, {
    cwd: dir,
    env: { ...QUIET_ENV, XDG_CONFIG_HOME: join(dir, '.config'), CI: '1' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid!, 'SIGTERM')
      } catch {
        // already gone
      }
      await exited
    }
  }
  const origin = `http://127.0.0.1:${port}`
  // Until it answers, or it exits: a bounded wait for readiness, not a timed assertion.
  for (let attempt = 0; attempt < 600; attempt++) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`)
    try {
      await fetch(`${origin}/__ready`)
      return { origin, output: () => output, stop }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  await stop()
  throw new Error(`wrangler dev did not answer:\n${output}`)
}

/** Scripts a scenario of the stub server (test/stub/openai-stub.ts). */
export async function script(origin: string, id: string, body: unknown): Promise<void> {
  const response = await fetch(`${origin}/__scenarios/${id}`, {
    method: 'PUT',
    body: JSON.stringify(body),
  })
  if (response.status !== 204) throw new Error(`scripting ${id}: ${response.status}`)
}

/** The requests a scenario of the stub received. */
export async function received(origin: string, id: string): Promise<Array<{ body: unknown }>> {
  return (await (await fetch(`${origin}/__scenarios/${id}/requests`)).json()) as Array<{
    body: unknown
  }>
}

/**
 * The judge as the tests script it: `False` (P(True) 0.05) when the question is about who makes
 * the bikes, `True` (0.98) otherwise.
 */
export const JUDGE_SCRIPT = {
  rules: [
    {
      contains: 'manufactures the bikes',
      step: {
        token: 'False',
        logprob: Math.log(0.95),
        topLogprobs: [
          { token: 'False', logprob: Math.log(0.95) },
          { token: 'True', logprob: Math.log(0.05) },
        ],
      },
    },
  ],
  otherwise: {
    token: 'True',
    logprob: Math.log(0.98),
    topLogprobs: [
      { token: 'True', logprob: Math.log(0.98) },
      { token: 'False', logprob: Math.log(0.02) },
    ],
  },
}

export const FALLBACK = "I can't answer that reliably from the information I have."

// The names the docs' examples take as given (what the text around each example defines).
export const README_PRELUDE = `declare const url: string
declare const headers: Record<string, string>
declare const body: string
declare const token: string
declare const model: string
declare const messages: Array<{ role: 'user'; content: string }>
declare const question: string
declare const input: string
declare const app: import('hono').Hono
declare const options: import('rag-guard').RagGuardOptions
declare const judge: import('rag-guard').JudgeChatModel
declare const searchDocuments: import('@langchain/core/tools').StructuredToolInterface
declare const ragChain: import('@langchain/core/runnables').Runnable<
  { input: string },
  { input: string; context: import('@langchain/core/documents').Document[]; answer: string }
>
declare function generate(...args: unknown[]): Promise<string>
declare namespace Cloudflare {
  interface Env {
    OPENAI_API_KEY: string
    OPERATOR_KEY: string
  }
}
`

/**
 * The TypeScript examples of README.md and docs/ (docs/README.md, "Checked documentation") for
 * one host: the Hono and Worker ones (they use `ragGuard(…)`, `cloudflare:workers` or
 * `rag-guard/worker`) for a Worker project, the others (LangChain, the openai client) for a Node
 * one.
 */
export function readmeExamples(host: 'workers' | 'node'): string[] {
  return typeScriptExamples()
    .map((example) => example.code)
    .filter(
      (code) =>
        /cloudflare:workers|ragGuard\(|rag-guard\/worker/.test(code) === (host === 'workers'),
    )
}

/** Type-checks examples, each a module of its own, with the docs' prelude: the diagnostics. */
export async function compileExamples(
  dir: string,
  examples: string[],
  compilerOptions: Record<string, unknown>,
): Promise<string> {
  const files: Record<string, string> = { 'readme/prelude.d.ts': README_PRELUDE }
  // `export {}`: each example is a module of its own
  examples.forEach(
    (code, index) => (files[`readme/example-${index + 1}.ts`] = `${code}\nexport {}\n`),
  )
  files['tsconfig.readme.json'] = JSON.stringify({
    compilerOptions: { ...compilerOptions, noEmit: true },
    files: Object.keys(files),
  })
  writeFiles(dir, files)
  return typeCheck(dir, 'tsconfig.readme.json')
}
