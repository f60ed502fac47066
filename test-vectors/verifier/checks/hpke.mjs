/** hpke.json against RFC 9180 (suite of spec/design/formats-v2.md §7.1). */
import { refuses, same } from '../lib/check.mjs';
import { fromHex as h } from '../lib/hex.mjs';
import { deriveKeyPair, exportSecret, openOnce, setupReceiver, setupSender } from '../lib/hpke.mjs';
import { seal } from '../lib/primitives.mjs';

export function checkHpke(f) {
  for (const g of f.groups('HpkeValid')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const e = deriveKeyPair(h(t.ikmE));
        same('skEm', e.sk, t.skEm);
        same('pkEm', e.pk, t.pkEm);
        same('skRm', deriveKeyPair(h(t.ikmR)).sk, t.skRm);
        same('pkRm', deriveKeyPair(h(t.ikmR)).pk, t.pkRm);
        const auth = t.mode === 2;
        if (auth) same('pkSm', deriveKeyPair(h(t.ikmS)).pk, t.pkSm);
        const s = setupSender(e.sk, h(t.pkRm), h(t.info), auth ? h(t.skSm) : undefined);
        same('enc', s.enc, t.enc);
        same('shared_secret', s.shared, t.sharedSecret);
        same('key_schedule_context', s.context, t.keyScheduleContext);
        same('secret', s.secret, t.secret);
        same('key', s.key, t.key);
        same('base_nonce', s.baseNonce, t.baseNonce);
        same('exporter_secret', s.exporterSecret, t.exporterSecret);
        same('ciphertext', seal(s.key, s.baseNonce, h(t.plaintext), h(t.aad)), t.ciphertext);
        const r = setupReceiver(h(t.enc), h(t.skRm), h(t.info), auth ? h(t.pkSm) : undefined);
        same('plaintext', openOnce(r, h(t.aad), h(t.ciphertext)), t.plaintext);
        for (const x of t.exports) same(`export ${x.exporterContext}`, exportSecret(r, h(x.exporterContext), x.length), x.exportedValue);
      });
    }
  }
  for (const g of f.groups('HpkeOpenInvalid')) {
    for (const t of g.tests) {
      f.run(t, () =>
        refuses(
          'open',
          () => openOnce(setupReceiver(h(t.enc), h(t.skRm), h(t.info), t.mode === 2 ? h(t.pkSm) : undefined), h(t.aad), h(t.ciphertext)),
          t.error,
        ),
      );
    }
  }
}
