#!/usr/bin/env node
/** The `parley-relay` command (package.json `bin`): plain compiled JavaScript, no TypeScript loader. */
import { main } from './main.ts';

await main(process.argv.slice(2));
