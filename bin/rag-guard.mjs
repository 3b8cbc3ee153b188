#!/usr/bin/env node
// The rag-guard command: runs the TypeScript CLI in src/cli through tsx, from a checkout.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
