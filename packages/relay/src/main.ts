/**
 * The relay's command line from the sources (tests and tools that run
 * TypeScript); installed packages run the compiled dist/cli/bin.js, the
 * `parley-relay` command. Options: `--help`, or packages/relay/README.md.
 */
import { main } from './cli/main.ts';

await main(process.argv.slice(2));
