#!/usr/bin/env node
// The `rag-guard` command of the package (dist/cli.js); from a checkout, bin/rag-guard.mjs runs
// the same through tsx.
import { main } from './main'

process.exitCode = await main(process.argv.slice(2))
