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

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'An import cycle makes load order matter and two modules one: move what both need into a third module that neither imports back.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-is-a-leaf',
      severity: 'error',
      comment: 'core is the protocol with no I/O: it imports neither the relay, the client, the web app nor the bench.',
      from: { path: CORE },
      to: { path: [RELAY, CLIENT, WEB, BENCH] },
    },
    {
      name: 'relay-not-client-or-bench',
      severity: 'error',
      comment:
        'The relay depends on core only: not the client or the bench, not even in scripts or test helpers (packages/relay/test/support/ signs requests with core). The client-relay interop is tested from the client side.',
      from: { path: RELAY },
      to: { path: [CLIENT, WEB, BENCH] },
    },
    {
      name: 'client-not-web-or-bench',
      severity: 'error',
      comment: 'The client SDK is a library: the web app and the bench use it, never the other way.',
      from: { path: CLIENT },
      to: { path: [WEB, BENCH] },
    },
    {
      name: 'client-sources-use-relay-types-only',
      severity: 'error',
      comment:
        "The client's sources may name the relay's published types (`import type`), never its code: a client must run without a relay in its bundle. Client tests may start a relay.",
      from: { path: '^packages/client/src/' },
      to: { path: '^packages/relay/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'web-not-bench',
      severity: 'error',
      comment: 'The web app is a product, the bench a measuring tool.',
      from: { path: WEB },
      to: { path: BENCH },
    },
    {
      name: 'crypto-primitives-only-in-core-crypto',
      severity: 'error',
      comment:
        'Primitives come from @noble/* and node:crypto through core/src/crypto/ only (the backend interface), so that one folder is what an auditor reads.',
      from: {
        pathNot: [
          '^packages/core/src/crypto/',
          // Tests check core's crypto against an independent implementation
          // (Wycheproof, torsion, reference hashes); checking core against
          // itself would prove nothing.
          '^packages/[^/]+/test/',
          // The vector verifier is an independent second implementation on
          // purpose, and the generator's reference Ed25519 likewise.
          '^test-vectors/',
        ],
      },
      to: { path: ['(^|/)node_modules/@noble/', '^(node:)?crypto$'] },
    },
    {
      name: 'cbor-only-in-core-codec',
      severity: 'error',
      comment: 'cbor-x is reached through core/src/codec/ only: one place decides the strict decoding rules.',
      from: { pathNot: '^packages/core/src/codec/' },
      to: { path: '(^|/)node_modules/cbor-x/' },
    },
    {
      name: 'peer-libraries-only-in-bench',
      severity: 'error',
      comment: "The libraries Parley is compared with are the bench's dev dependencies and are imported nowhere else.",
      from: { pathNot: BENCH },
      to: { path: PEER_LIBRARIES },
    },
    {
      name: 'handshake-below-ratchet',
      severity: 'error',
      comment:
        'PQXDH only derives the shared secret: it imports crypto, codec and keys, never the ratchet, session or group layers (spec/03-handshake.md).',
      from: { path: '^packages/core/src/handshake/' },
      to: { path: '^packages/core/src/(ratchet|session|group)/' },
    },
    {
      name: 'ratchet-is-pure',
      severity: 'error',
      comment: 'Double Ratchet transitions stay pure: the ratchet imports neither the handshake, the session nor the group layer.',
      from: { path: '^packages/core/src/ratchet/' },
      to: { path: '^packages/core/src/(handshake|session|group)/' },
    },
    {
      name: 'session-below-group',
      severity: 'error',
      comment: 'Sender-key groups are built on sessions, not the other way.',
      from: { path: '^packages/core/src/session/' },
      to: { path: '^packages/core/src/group/' },
    },
    {
      name: 'crypto-and-codec-are-leaves',
      severity: 'error',
      comment: 'crypto/ and codec/ are the bottom of core: they import no protocol layer.',
      from: { path: '^packages/core/src/(crypto|codec)/' },
      to: { path: '^packages/core/src/(keys|handshake|ratchet|session|group)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing is a typo or a missing dependency.',
      from: {},
      to: { couldNotResolve: true },
    },
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
