// The dependency rules of .dependency-cruiser.cjs (run by `npm run lint`)
// catch what they say they catch: a fixture tree plants one violation of
// each rule next to imports the rules allow, and the checker must report
// exactly the violations. Without this, a rule with a typo in its path would
// pass forever on a clean repository.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixture/', import.meta.url));
const DEPCRUISE = `${ROOT}node_modules/dependency-cruiser/bin/dependency-cruise.mjs`;
const CONFIG = `${ROOT}.dependency-cruiser.cjs`;

function cruise(paths: string[], outputType: 'json' | 'err-long') {
  const run = spawnSync(process.execPath, [DEPCRUISE, ...paths, '--config', CONFIG, '--output-type', outputType], {
    cwd: FIXTURE,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (run.error) throw run.error;
  return run;
}

interface Violation {
  readonly rule: { readonly name: string };
  readonly from: string;
  readonly to: string;
  readonly cycle?: readonly { readonly name: string }[];
}

/** Where an import lands, without the path up to node_modules (it depends on where the fixture sits). */
const target = (to: string) => to.replace(/^(\.\.\/)+node_modules\//, 'node_modules/');

describe('the dependency rules on a fixture tree with planted violations', () => {
  it('reports each planted violation, and nothing the rules allow', () => {
    const run = cruise(['packages', 'bench'], 'json');
    const { summary } = JSON.parse(run.stdout) as { summary: { violations: Violation[] } };
    const found = summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${target(v.to)}`).sort();
    expect(found).toEqual(
      [
        'cbor-only-in-core-codec: packages/client/src/cbor.ts -> node_modules/cbor-x/node-index.js',
        'client-not-web-or-bench: packages/client/src/index.ts -> packages/web/src/index.ts',
        'client-sources-use-relay-types-only: packages/client/src/relay-adapter.ts -> packages/relay/src/index.ts',
        'core-is-a-leaf: packages/core/src/index.ts -> packages/relay/src/index.ts',
        'crypto-and-codec-are-leaves: packages/core/src/crypto/backend.ts -> packages/core/src/keys/identity.ts',
        'crypto-primitives-only-in-core-crypto: packages/client/src/digest.ts -> crypto',
        'crypto-primitives-only-in-core-crypto: packages/client/src/digest.ts -> node_modules/@noble/hashes/sha2.js',
        'handshake-below-ratchet: packages/core/src/handshake/pqxdh.ts -> packages/core/src/ratchet/ratchet.ts',
        'no-circular: bench/src/a.ts -> bench/src/b.ts',
        'not-to-unresolvable: packages/client/src/typo.ts -> ./does-not-exist.ts',
        'peer-libraries-only-in-bench: packages/client/src/peer.ts -> node_modules/@signalapp/libsignal-client/dist/index.js',
        'ratchet-is-pure: packages/core/src/ratchet/ratchet.ts -> packages/core/src/session/record.ts',
        'relay-not-client-or-bench: packages/relay/scripts/load.ts -> bench/src/a.ts',
        'relay-not-client-or-bench: packages/relay/test/support.ts -> packages/client/src/index.ts',
        'session-below-group: packages/core/src/session/record.ts -> packages/core/src/group/state.ts',
        'web-not-bench: packages/web/src/index.ts -> bench/src/a.ts',
      ].sort(),
    );
    // Every rule of the file is exercised by the fixture.
    const rules = new Set(summary.violations.map((v) => v.rule.name));
    const config = createRequire(import.meta.url)(CONFIG) as { forbidden: { name: string }[] };
    expect(config.forbidden.map((r) => r.name).filter((name) => !rules.has(name))).toEqual([]);
  });

  it('fails with a message that says which rule broke, where, and why (the output `npm run lint` shows)', () => {
    const run = cruise(['packages/relay/test/support.ts'], 'err-long');
    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain('error relay-not-client-or-bench: packages/relay/test/support.ts → packages/client/src/index.ts');
    expect(run.stdout).toMatch(/The relay depends on core only/);
  });
});
