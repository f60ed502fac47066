/**
 * Franking rows (issue 19, spec/14-franking.md, spec/17-franking-and-reports.md), each sampled
 * with its peer:
 *
 * - per 1:1 message: what franking adds to a v2 message, the sender's tag and the receiver's
 *   recomputation (HMAC-SHA256 over the sender and the 100 B content, constant-time compare);
 *   the bytes it adds (the tag beside the message and the franking key inside the body) are
 *   measured on a real v2 message;
 * - per group message: a v1 group message (no franking) next to a v2 one (tag in the signed
 *   header, key in the body), encrypt + one member decrypt, and their sizes;
 * - report verification by the moderation service: a report of one message, and of the reported
 *   message with 10 context messages (MAX_REPORT_ITEMS), decoded and verified (relay frank,
 *   franking tag, item rules).
 */
import {
  type AbuseReport,
  type CryptoProvider,
  GroupSession,
  MAX_REPORT_ITEMS,
  type ReportItem,
  checkFrankingTag,
  decodeReport,
  encodeCbor,
  encodeReport,
  frankKeyId,
  frankingTag,
  memberOf,
  relayFrank,
  verifyReport,
} from '@parley/core';
import type { Entry } from '../runner.ts';
import { type Backend, establishedPairV2, party, payload, providerFor, tagOf } from './fixtures.ts';

const SMALL = 100;

/** Bytes franking adds to one v2 1:1 message of `size` bytes, measured on a real message. */
export function frankingBytesOneToOne(size = SMALL): { tag: number; keyField: number } {
  const provider = providerFor('node');
  const pair = establishedPairV2(provider);
  const m = pair.aliceToBob.encryptWithTag(payload(size));
  const opened = pair.bobToAlice.decrypt(m.message, { frankingTag: tagOf(m) });
  if (!opened.frankingKey) throw new Error('a v2 message without a franking key');
  // The key is the body's first field, a CBOR byte string (2-byte head + 32 bytes), padded with the rest.
  return { tag: tagOf(m).length, keyField: encodeCbor(opened.frankingKey).length };
}

/** The franking tag's own cost per 1:1 message: computed by the sender, recomputed and compared by the receiver. */
export function frankingTagEntries(backend: Backend): Entry[] {
  const provider = providerFor(backend);
  const sender = { accountKey: party(provider).account.publicKey, deviceId: 1 };
  const content = payload(SMALL);
  const key = provider.random(32);
  return [
    {
      meta: {
        section: 'v2',
        subject: 'parley',
        variant: backend,
        op: 'franking-tag-1to1',
        label: 'franking per message: tag by the sender + check by the receiver, 100 B',
        note: 'two HMAC-SHA256 over CBOR(label, sender, content) and a constant-time compare',
      },
      family: 'franking-tag',
      task: {
        run() {
          const tag = frankingTag(provider.backend, key, sender, content);
          if (!checkFrankingTag(provider.backend, key, sender, content, tag)) throw new Error('tag mismatch');
        },
      },
    },
  ];
}

/** A group of two whose every message the member decrypts, in order. */
function groupPair(provider: CryptoProvider) {
  const a = party(provider, 1);
  const b = party(provider, 1);
  const members = [memberOf(a.device.certificate), memberOf(b.device.certificate)];
  const groupId = provider.random(32);
  const alice = GroupSession.create(a.device, members, { groupId, provider });
  const bob = GroupSession.create(b.device, members, { groupId, provider });
  bob.processDistribution(alice.distribution().bytes, a.device.certificate);
  return {
    send(body: Uint8Array, version: 1 | 2): number {
      const out = alice.encrypt(body, { version });
      // A rotation every 1,000 messages reaches the member as a one-to-one message; its cost has its own group row.
      if (out.distribution) bob.processDistribution(out.distribution.bytes, a.device.certificate);
      if (bob.decrypt(out.message).plaintext.length !== body.length) throw new Error('group round trip');
      return out.message.length;
    },
  };
}

/** Group message v1 (no franking) next to v2 (franked): encrypt + one member decrypt, 100 B. */
export function frankingGroupEntries(backend: Backend): Entry[] {
  const provider = providerFor(backend);
  const body = payload(SMALL);
  return ([1, 2] as const).map((version) => {
    const group = groupPair(provider);
    const bytes = group.send(body, version);
    return {
      meta: {
        section: 'v2',
        subject: 'parley',
        variant: backend,
        op: `franking-group-v${version}`,
        label: `group message v${version} ${version === 2 ? '(franked)' : '(no franking)'}: encrypt + 1 decrypt, 100 B`,
        note: `${bytes} B message${version === 2 ? ': franking tag in the signed header, franking key in the body' : ''}`,
      },
      family: 'franking-group',
      task: { run: () => group.send(body, version) },
    } satisfies Entry;
  });
}

/** Sizes of a v1 and a v2 group message of `size` bytes. */
export function groupMessageBytes(size = SMALL): { v1: number; v2: number } {
  const provider = providerFor('node');
  const group = groupPair(provider);
  return { v1: group.send(payload(size), 1), v2: group.send(payload(size), 2) };
}

const timeBytes = (ms: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(ms));
  return out;
};

/**
 * A valid report of `items` messages from one identified sender to the reporter's device 1, as the
 * reporter's client assembles it from what it stored at delivery, and the verifier's context.
 */
function reportFixture(provider: CryptoProvider, items: number) {
  const b = provider.backend;
  const reporter = party(provider).account.publicKey;
  const sender = { accountKey: party(provider).account.publicKey, deviceId: 1 };
  const frankKey = provider.random(32);
  const acceptedAt = Date.UTC(2026, 11, 6, 8, 0, 0);
  const keyId = frankKeyId(acceptedAt);
  const list: ReportItem[] = Array.from({ length: items }, (_, n) => {
    const plaintext = payload(SMALL + n);
    const frankingKey = provider.random(32);
    const tag = frankingTag(b, frankingKey, sender, plaintext);
    const envelopeId = provider.random(16);
    const frank = relayFrank(b, frankKey, {
      keyId,
      frankingTag: tag,
      recipient: { accountKey: reporter, deviceId: 1 },
      acceptedAt,
      envelopeId,
      sender,
    });
    return {
      role: n === 0 ? 1 : 2,
      envelopeId,
      acceptedAt: timeBytes(acceptedAt),
      frankKeyId: keyId,
      frank,
      recipientDevice: 1,
      frankingTag: tag,
      frankingKey,
      sender,
      plaintext,
      token: null,
      attestation: null,
      attachments: [],
    };
  });
  const report: AbuseReport = { reason: 1, comment: '', items: list };
  const bytes = encodeReport(report);
  const context = {
    reporterAccount: reporter,
    reporterDevices: [1],
    frankKey: (id: number) => (id === keyId ? frankKey : null),
    tokenKey: () => null,
    moderatorKey: provider.random(32),
    reportedBefore: () => false,
  };
  return { bytes, context };
}

/** Report verification: decode + every check of spec 17 §5 (attachments aside), 1 and 11 items. */
export function reportVerifyEntries(backend: Backend): Entry[] {
  const provider = providerFor(backend);
  return [1, MAX_REPORT_ITEMS].map((items) => {
    const { bytes, context } = reportFixture(provider, items);
    return {
      meta: {
        section: 'v2',
        subject: 'parley',
        variant: backend,
        op: `report-verify-${items}`,
        label: `report verify: decode + check ${items === 1 ? 'the reported message' : `${items} messages (1 + 10 context)`}`,
        note: `${bytes.length} B report; per message a relay frank and a franking tag (2 HMAC-SHA256); identified sender`,
      },
      family: 'report-verify',
      task: {
        run() {
          const verdict = verifyReport(provider.backend, decodeReport(bytes), context);
          if (!verdict.ok) throw new Error(`report refused: ${verdict.code}`);
        },
      },
    } satisfies Entry;
  });
}
