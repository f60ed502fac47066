// test-vectors/groups-v2.json through GroupSession with each backend: a
// member that was handed the vector's sender chain decrypts every valid
// message to its plaintext, franking key and tag, and refuses every invalid
// one (the two-key collision included) with its code, state unchanged.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { cryptoProvider } from '../src/crypto/provider.ts';
import { encodeDistribution } from '../src/group/distribution.ts';
import { decodeGroupMessageV2 } from '../src/group/message-v2.ts';
import { GroupSession } from '../src/group/session.ts';
import type { DeviceCertificate } from '../src/keys/certificate.ts';
import { Account } from '../src/keys/identity.ts';
import { deterministicRandom } from '../src/testing.ts';
import { expectUnchanged } from './support/errors.ts';
import { GROUPS_V2_FILE, buildGroupsV2 } from './support/groups-v2-vectors.ts';

const TEXT = readFileSync(GROUPS_V2_FILE, 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field.
const VECTORS: any = JSON.parse(TEXT);
// biome-ignore lint/suspicious/noExplicitAny: as above.
const group = (type: string): any[] => VECTORS.testGroups.find((g: { type: string }) => g.type === type).tests;

it('test-vectors/groups-v2.json equals the generator output byte for byte', () => {
  expect(TEXT === buildGroupsV2()).toBe(true);
});

for (const backend of [nobleBackend, nodeBackend] as CryptoBackend[]) {
  describe(`groups-v2.json with the ${backend.name} backend`, () => {
    /** A member holding the vector's chain for the message's sender. */
    function member(t: { chainKey: string; signingPublicKey: string; message: string }): GroupSession {
      const p = cryptoProvider(backend, deterministicRandom('groups-v2 member'));
      const h = decodeGroupMessageV2(fromHex(t.message)).header;
      const me = Account.generate(p).createDevice(1, p);
      const g = GroupSession.create(me, [h.sender], { groupId: h.groupId, provider: p });
      const distribution = encodeDistribution({
        groupId: h.groupId,
        epoch: 0,
        sender: h.sender,
        generation: 0,
        iteration: 0,
        chainKey: fromHex(t.chainKey),
        signingKey: fromHex(t.signingPublicKey),
      });
      // The distribution arrives on the sender's 1:1 session: only its account and device are read.
      g.processDistribution(distribution, { accountKey: h.sender.accountKey, deviceId: h.sender.deviceId } as DeviceCertificate);
      return g;
    }

    for (const t of group('GroupMessageV2')) {
      it(`${t.tcId}: ${t.comment}`, () => {
        const r = member(t).decrypt(fromHex(t.message), { frankingTag: fromHex(t.deliveredTag) });
        expect(toHex(r.plaintext)).toBe(t.plaintext);
        expect([r.version, toHex(r.franking?.key as Uint8Array), toHex(r.franking?.tag as Uint8Array)]).toEqual([
          2,
          t.frankingKey,
          t.frankingTag,
        ]);
      });
    }

    for (const t of [...group('GroupMessageV2Invalid'), ...group('TwoKeyCollision')]) {
      it(`${t.tcId}: ${t.comment}: ${t.error}`, () => {
        const g = member(t);
        const options = t.deliveredTag === null ? {} : { frankingTag: fromHex(t.deliveredTag) };
        expectUnchanged(g, () => g.decrypt(fromHex(t.message), options), t.error);
      });
    }
  });
}
