/**
 * A decision store for the guard under `wrangler dev`: the repository's wrangler.toml with a
 * local D1 database bound as GUARD_DB (wrangler.toml ships the binding commented out), written to
 * a working directory, and the schema of src/review/migrations/ applied to it with
 * `wrangler d1 migrations apply --local`. Used by `npm run demo` and the review page's browser
 * test; nothing of it leaves the machine.
 */
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'smol-toml'

/** Keeps wrangler offline and quiet. */
export const QUIET_WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
}

/**
 * Writes `<directory>/wrangler.toml`: the repository's, with `main`, the aliases and
 * `migrations_dir` pointing back into the repository and GUARD_DB bound to a local database. Returns its path.
 */
export function writeStoreConfig(root: string, directory: string): string {
  const config = parse(readFileSync(join(root, 'wrangler.toml'), 'utf8')) as Record<string, unknown>
  config.main = join(root, String(config.main))
  // The bundle's aliases (src/bundle/) are paths relative to the configuration, as `main` is.
  const alias = (config.alias ?? {}) as Record<string, string>
  config.alias = Object.fromEntries(
    Object.entries(alias).map(([name, path]) => [name, join(root, path)]),
  )
  config.d1_databases = [
    {
      binding: 'GUARD_DB',
      database_name: 'rag-guard-local',
      // Any id will do for a database that only exists locally.
      database_id: '00000000-0000-4000-8000-000000000018',
      migrations_dir: join(root, 'src/review/migrations'),
    },
  ]
  const path = join(directory, 'wrangler.toml')
  writeFileSync(path, stringify(config))
  return path
}

/** Applies src/review/migrations/ to the local database kept in `persistTo`. Rejects with wrangler's output. */
export function applyMigrations(
  root: string,
  configPath: string,
  persistTo: string,
): Promise<void> {
  return localD1(root, configPath, persistTo, ['migrations', 'apply', 'GUARD_DB'])
}

/** Runs the SQL of `file` on the local database kept in `persistTo` (seeding it, in tests). */
export function executeSqlFile(
  root: string,
  configPath: string,
  persistTo: string,
  file: string,
): Promise<void> {
  return localD1(root, configPath, persistTo, ['execute', 'GUARD_DB', '--file', file])
}

/** `wrangler d1 <command> --local` on the database kept in `persistTo`. Rejects with wrangler's output. */
function localD1(
  root: string,
  configPath: string,
  persistTo: string,
  command: string[],
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      join(root, 'node_modules/.bin/wrangler'),
      ['d1', ...command, '--local', '-c', configPath, '--persist-to', persistTo],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        // `CI` answers wrangler's "Ok to proceed?" with yes.
        env: { ...process.env, ...QUIET_WRANGLER_ENV, CI: 'true' },
      },
    )
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('error', reject)
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`wrangler d1 ${command[0]} failed (exit ${code}):\n${output}`)),
    )
  })
}

/**
 * What the demo says of the review page once its table is printed. Kept running, the address and
 * the operator token to sign in with; with `--once` the Workers (and their local D1, removed with
 * the working directory) are already gone, so an address would lead nowhere: it says how to keep
 * them running instead.
 */
export function reviewPageNote(guardUrl: string, operatorToken: string, once: boolean): string {
  return once
    ? 'Review page: the decisions above were stored in a local D1, which --once has stopped with the Workers; run `npm run demo` without --once to open the page and label them.'
    : `Review page (these decisions, stored in a local D1): ${guardUrl}/_guard/review — sign in with the operator token ${operatorToken}`
}

/**
 * What `npm run demo` prints last, while both Workers keep serving: requests to try with each
 * token, and how to read the labels as calibrate does. From a clone the command is
 * `npm run rag-guard --` (the package's `rag-guard` bin is the built dist/cli.js).
 */
export function tryItNote(guardUrl: string, callerToken: string, operatorToken: string): string {
  return `The table was fetched with the operator token, which also sees scores and reasons. Try it
yourself (Ctrl-C stops both Workers); a caller's token gets the verdict only, no token a 401:
  curl -si ${guardUrl}/ask -H 'authorization: Bearer ${callerToken}' -H 'content-type: application/json' -d '{"question": "How old do I have to be to rent a bike?"}'
  curl -si ${guardUrl}/v1/chat/completions -H 'authorization: Bearer ${operatorToken}' -H 'content-type: application/json' -d '{"model": "m", "messages": [{"role": "user", "content": "What does a day pass cost?"}]}'
  curl -si ${guardUrl}/rag/invoke -H 'authorization: Bearer ${callerToken}' -H 'content-type: application/json' -d '{"input": {"input": "Which company manufactures the bikes?"}}'
  curl -si ${guardUrl}/ask -H 'content-type: application/json' -d '{"question": "No token?"}'
Label a few decisions on the review page, then read the labels as calibrate does:
  RAG_GUARD_TOKEN=${operatorToken} npm run rag-guard -- calibrate ${guardUrl}/_guard/labels.jsonl`
}
