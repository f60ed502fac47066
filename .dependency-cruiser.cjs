/**
 * The architecture's dependency rules, checked by `npm run lint`
 * (`npm run lint:deps`). README.md's "Architecture rules, checked by lint"
 * says the same in words; this file is what holds.
 *
 * Paths are relative to the repository root. Workspace packages
 * (`@parley/*`) resolve through node_modules symlinks to their sources, so a
 * rule on `^packages/client/` also catches `import ... from '@parley/client'`.
 *
 * A justified exception is written into the rule's `pathNot`, each with its
 * reason beside it. Adding one is a design decision: say why in review.
 *
 * test/architecture/dependency-rules.test.ts plants a violation of every
 * rule in a fixture tree and checks that this file catches it.
 */

/** Where a workspace's code lives: sources, scripts, tests and test helpers alike. */
const CORE = '^packages/core/';
const RELAY = '^packages/relay/';
const CLIENT = '^packages/client/';
const WEB = '^packages/web/';
const BENCH = '^bench/';

/** The peer libraries the benchmarks compare against: bench's own dev dependencies. */
const PEER_LIBRARIES = [
  '(^|/)node_modules/@signalapp/libsignal-client/',
  '(^|/)node_modules/@privacyresearch/libsignal-protocol-typescript/',
  '(^|/)node_modules/@towns-protocol/olm/',
  '(^|/)node_modules/ts-mls/',
];

/**
 * Which workspace must not import which (the arrows of ARCHITECTURE.md, read
 * backwards): [rule name, the workspace, the workspaces it must not import, why].
 */
const WORKSPACE_LAYERS = [
  [
    'core-is-a-leaf',
    CORE,
    [RELAY, CLIENT, WEB, BENCH],
    'core is the protocol with no I/O: it imports neither the relay, the client, the web app nor the bench.',
  ],
  [
    'relay-not-client-or-bench',
    RELAY,
    [CLIENT, WEB, BENCH],
    'The relay depends on core only: not the client or the bench, not even in scripts or test helpers (packages/relay/test/support/ signs requests with core). The client-relay interop is tested from the client side.',
  ],
  ['client-not-web-or-bench', CLIENT, [WEB, BENCH], 'The client SDK is a library: the web app and the bench use it, never the other way.'],
  ['web-not-bench', WEB, BENCH, 'The web app is a product, the bench a measuring tool.'],
];

/**
 * Libraries only one place may import: [rule name, the library paths, the
 * places allowed to (a path or a list), why]. An exception sits in its list
 * with its reason beside it.
 */
const ONLY_IMPORTED_FROM = [
  [
    'crypto-primitives-only-in-core-crypto',
    ['(^|/)node_modules/@noble/', '^(node:)?crypto$'],
    [
      '^packages/core/src/crypto/',
      // Tests check core's crypto against an independent implementation
      // (Wycheproof, torsion, reference hashes); checking core against
      // itself would prove nothing.
      '^packages/[^/]+/test/',
      // The vector verifier is an independent second implementation on
      // purpose, and the generator's reference Ed25519 likewise.
      '^test-vectors/',
    ],
    'Primitives come from @noble/* and node:crypto through core/src/crypto/ only (the backend interface), so that one folder is what an auditor reads.',
  ],
  [
    'cbor-only-in-core-codec',
    '(^|/)node_modules/cbor-x/',
    [
      '^packages/core/src/codec/',
      // The decoder core had before session 6 (cbor-x, a subset walk, a re-encode check) is the test
      // oracle of core's own strict reader: it shares no parsing code with it.
      '^packages/core/test/support/cbor-oracle\\.ts$',
    ],
    'cbor-x is reached through core/src/codec/ only: one place decides the strict decoding rules.',
  ],
  [
    'peer-libraries-only-in-bench',
    PEER_LIBRARIES,
    BENCH,
    "The libraries Parley is compared with are the bench's dev dependencies and are imported nowhere else.",
  ],
];

/** core's own layers, bottom up: [rule name, a folder of core/src, the folders it must not import, why]. */
const CORE_LAYERS = [
  [
    'handshake-below-ratchet',
    'handshake',
    'ratchet|session|group',
    'PQXDH only derives the shared secret: it imports crypto, codec and keys, never the ratchet, session or group layers (spec/03-handshake.md).',
  ],
  [
    'ratchet-is-pure',
    'ratchet',
    'handshake|session|group',
    'Double Ratchet transitions stay pure: the ratchet imports neither the handshake, the session nor the group layer.',
  ],
  ['session-below-group', 'session', 'group', 'Sender-key groups are built on sessions, not the other way.'],
  [
    'crypto-and-codec-are-leaves',
    'crypto|codec',
    'keys|handshake|ratchet|session|group',
    'crypto/ and codec/ are the bottom of core: they import no protocol layer.',
  ],
];

/** Every rule is an error: a rule worth writing is worth failing the build on. */
const rule = (name, comment, from, to) => ({ name, severity: 'error', comment, from, to });

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    rule(
      'no-circular',
      'An import cycle makes load order matter and two modules one: move what both need into a third module that neither imports back.',
      {},
      { circular: true },
    ),
    ...WORKSPACE_LAYERS.map(([name, from, to, comment]) => rule(name, comment, { path: from }, { path: to })),
    rule(
      'client-sources-use-relay-types-only',
      "The client's sources may name the relay's published types (`import type`), never its code: a client must run without a relay in its bundle. Client tests may start a relay.",
      { path: '^packages/client/src/' },
      { path: '^packages/relay/', dependencyTypesNot: ['type-only'] },
    ),
    ...ONLY_IMPORTED_FROM.map(([name, library, allowed, comment]) => rule(name, comment, { pathNot: allowed }, { path: library })),
    ...CORE_LAYERS.map(([name, folder, below, comment]) =>
      rule(name, comment, { path: `^packages/core/src/(${folder})/` }, { path: `^packages/core/src/(${below})/` }),
    ),
    rule('not-to-unresolvable', 'An import that resolves to nothing is a typo or a missing dependency.', {}, { couldNotResolve: true }),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // node_modules are not excluded (a rule must see an import of @noble/*), only not followed.
    exclude: { path: ['^packages/[^/]+/dist/', '^bench/results/', '^coverage/', '^test/architecture/fixture/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.mts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
    moduleSystems: ['es6', 'cjs'],
    reporterOptions: { text: { highlightFocused: true } },
  },
};
