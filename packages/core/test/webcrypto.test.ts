/**
 * The WebCrypto curves (src/crypto/webcrypto.ts) against noble on every
 * Wycheproof X25519 and Ed25519 case and random keys, in Node's own
 * WebCrypto. The same check runs in Chromium in webcrypto-browser.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { nobleBackend } from '../src/crypto/noble.ts';
import { webCryptoCurves } from '../src/crypto/webcrypto.ts';
import { crossCheck, crossVectors } from './support/webcrypto-cross.ts';
import { loadWycheproof } from './support/wycheproof.ts';

describe('WebCrypto curves (Node)', () => {
  it('agree with noble and with Wycheproof on every X25519 and Ed25519 case, and on random keys', async () => {
    const curves = await webCryptoCurves();
    expect(curves).not.toBeNull();
    const vectors = crossVectors(
      loadWycheproof('x25519_test.json', { algorithm: 'XDH', groupType: 'XdhComp' }),
      loadWycheproof('ed25519_test.json', { algorithm: 'EDDSA', groupType: 'EddsaVerify' }),
    );
    const report = await crossCheck(curves!, nobleBackend, vectors);
    expect(report.x25519.cases).toBe(vectors.x25519.length);
    expect(report.x25519.cases).toBeGreaterThan(500);
    expect(report.ed25519.cases).toBeGreaterThan(100);
    expect(report).toMatchObject({ x25519: { disagree: [], wrong: [] }, ed25519: { disagree: [], wrong: [] }, random: { disagree: [] } });
  });

  it('a wrong implementation is caught (the check can fail)', async () => {
    const curves = await webCryptoCurves();
    const vectors = crossVectors(
      loadWycheproof('x25519_test.json', { algorithm: 'XDH', groupType: 'XdhComp' }),
      loadWycheproof('ed25519_test.json', { algorithm: 'EDDSA', groupType: 'EddsaVerify' }),
    );
    // A lenient verifier that accepts everything, as a ZIP-215 or a broken one would accept too much.
    const lenient = { ...curves!, ed25519Verify: async () => true };
    const report = await crossCheck(lenient, nobleBackend, vectors, 2);
    expect(report.ed25519.wrong.length).toBeGreaterThan(0);
    expect(report.random.disagree.length).toBeGreaterThan(0);
  });
});
