#!/usr/bin/env node
/**
 * The `parley` command installed by @parley/client (package.json `bin`),
 * compiled to dist/cli/bin.js: plain JavaScript, no TypeScript loader.
 */
import { runCli } from './main.ts';

await runCli(process.argv.slice(2));
