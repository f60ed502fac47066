#!/usr/bin/env node
// The `parley` command: registers tsx (the SDK runs from its TypeScript source) and starts the CLI.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
await runCli(process.argv.slice(2));
