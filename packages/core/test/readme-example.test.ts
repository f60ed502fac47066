// The README's usage example, executed verbatim (between the markers) so it can never rot.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as core from '../src/index.ts';

describe('README usage example', () => {
  it('runs and prints what the README says', async () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const match = readme.match(/<!-- example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- example:end -->/);
    expect(match, 'README has a marked example').not.toBeNull();
    const code = (match?.[1] ?? '').replace(/^import .*$/gm, '').replace(/console\.log\(/g, 'log(');
    const logs: string[] = [];
    const log = (...args: unknown[]) => logs.push(args.map(String).join(' '));
    const fn = new Function('core', 'log', `const { ${Object.keys(core).join(', ')} } = core;\n${code}`);
    await fn(core, log);
    expect(logs).toEqual(['hello Bob', 'hi Alice', 'safety numbers match: true']);
  });
});
