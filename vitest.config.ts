import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * Inside the repository every @parley/* import resolves to the TypeScript
 * sources through the `parley:source` export condition (package.json
 * `exports`), so tests need no build; consumers of the published packages
 * get `dist/`. Child processes started by tests (a relay under tsx, the CLI)
 * inherit the same condition through NODE_OPTIONS.
 */
const SOURCE_CONDITION = 'parley:source';

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test-vectors/test/**/*.test.ts', 'bench/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    env: { NODE_OPTIONS: [process.env.NODE_OPTIONS, `--conditions=${SOURCE_CONDITION}`].filter(Boolean).join(' ') },
    reporters: ['default', './.ci/totals-reporter.ts'],
  },
});
