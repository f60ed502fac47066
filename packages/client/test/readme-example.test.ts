// packages/client/README.md's example, executed verbatim (between the markers) against a real relay, so it can never rot.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, withDefaults } from '@parley/relay';
import { describe, expect, it } from 'vitest';
import * as sdk from '../src/index.ts';
import * as node from '../src/node.ts';

describe('client README example', () => {
  it('runs and prints what the README says', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const match = readme.match(/<!-- example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- example:end -->/);
    expect(match, 'README has a marked example').not.toBeNull();
    const code = (match?.[1] ?? '').replace(/^import .*$/gm, '').replace(/console\.log\(/g, 'log(');
    const dir = mkdtempSync(join(tmpdir(), 'parley-readme-'));
    const relay = await startServer(withDefaults({ host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent' }));
    try {
      const logs: string[] = [];
      const log = (...args: unknown[]) => logs.push(args.map(String).join(' '));
      const scope = { ...sdk, ...node };
      const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
        ...args: string[]
      ) => (...a: unknown[]) => Promise<void>;
      const fn = new AsyncFunction('scope', 'log', 'RELAY_URL', `const { ${Object.keys(scope).join(', ')} } = scope;\n${code}`);
      await fn(scope, log, relay.url);
      expect(logs).toEqual(['hello Bob', 'true']);
    } finally {
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
