/**
 * Browser entry for the portable-build test (browser.test.ts): bundled by
 * esbuild for `platform: 'browser'`, loaded into headless Chromium, where it
 * runs the README's example flow through the public '@parley/core' API (two
 * accounts, a prekey bundle through its wire form, a session both ways, a
 * safety number) and leaves the outcome in `window.__result` for the test to
 * read. spec/01-conventions.md §4: away from Node the default backend is
 * noble, so the result also names the backend the page actually used.
 */
import {
  Account,
  PreKeyStore,
  SessionRecord,
  decodeBundle,
  defaultProvider,
  encodeBundle,
  fromUtf8,
  safetyNumber,
  utf8,
} from '@parley/core';

/** What the page reports back. `error` carries an exception's name and message only. */
export interface BrowserResult {
  readonly backend: string;
  readonly lines: readonly string[];
  readonly error?: string;
}

declare global {
  interface Window {
    __result?: BrowserResult;
  }
}

function run(): string[] {
  const lines: string[] = [];
  const alice = Account.generate();
  const aliceDevice = alice.createDevice(1);
  const bob = Account.generate();
  const bobDevice = bob.createDevice(1);
  const bobPrekeys = PreKeyStore.generate(bobDevice, { oneTimePreKeys: 10, kemPreKeys: 2 });

  const bundle = decodeBundle(encodeBundle(bobPrekeys.bundle()));
  const aliceToBob = SessionRecord.initiate(aliceDevice, bundle, { expectedAccountKey: bob.publicKey });
  const first = aliceToBob.encrypt(utf8('hello Bob'));

  const bobToAlice = new SessionRecord();
  lines.push(fromUtf8(bobToAlice.decrypt(first, { device: bobDevice, prekeys: bobPrekeys }).plaintext));
  lines.push(fromUtf8(aliceToBob.decrypt(bobToAlice.encrypt(utf8('hi Alice'))).plaintext));

  const same = safetyNumber(alice.publicKey, bob.publicKey).digits === safetyNumber(bob.publicKey, alice.publicKey).digits;
  lines.push(`safety numbers match: ${same}`);
  return lines;
}

const backend = defaultProvider().backend.name;
try {
  window.__result = { backend, lines: run() };
} catch (e) {
  window.__result = { backend, lines: [], error: e instanceof Error ? `${e.name}: ${e.message}` : 'non-Error thrown' };
}
