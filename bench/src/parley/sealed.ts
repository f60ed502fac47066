/**
 * Sealed sender rows (issue 16, spec/12-sealed-sender.md), on both backends, each sealed figure
 * sampled together with its unsealed peer:
 *
 * - 1:1, 100 B on a v2 session: send + open unsealed (encrypt, decrypt) next to sealed
 *   (encrypt, seal to the recipient device with the franking tag in its AAD, open trying the
 *   contact's one device, decrypt), and the bytes the seal adds;
 * - the open of a forged seal that tries all MAX_SEAL_CANDIDATES devices (the most one hostile
 *   envelope under a valid token costs the recipient);
 * - group, 100 B to N devices (N = 100, and 1,000 in the full profile): the sender's side
 *   unsealed (one v2 group message, stored once by the relay's fan-out) next to sealed (the
 *   group message once as a sealed payload, plus one sealed key wrap per device), and one
 *   recipient's side (verify + decrypt, against open wrap + payload + verify + decrypt), with
 *   the bytes uploaded each way.
 *
 * The group message is encrypted once whatever N is (sender keys); what grows with N is the
 * seal loop, so the recipients beyond the one that opens are bare X25519 keys with their own
 * certificate hash and delivery token.
 */
import { type CryptoProvider, GroupSession, certificateHash, memberOf, seal } from '@parley/core';
import type { Entry } from '../runner.ts';
import { type Backend, type Party, establishedPairV2, party, payload, providerFor, tagOf } from './fixtures.ts';

const SMALL = 100;

function expectLength(length: number, wanted: number): void {
  if (length !== wanted) throw new Error(`round trip returned ${length} bytes, expected ${wanted}`);
}

/** 1:1 rows: unsealed and sealed send + open, and the forged open. */
export function sealedOneToOneEntries(backend: Backend): Entry[] {
  const provider = providerFor(backend);
  const meta = { section: 'v2', subject: 'parley', variant: backend } as const;
  const pair = establishedPairV2(provider);
  const body = payload(SMALL);
  const token = seal.newDeliveryToken(provider);
  const tokenHash = seal.deliveryTokenHash(pair.bob.account.publicKey, token, provider);
  const bobCertHash = certificateHash(pair.bob.device.certificate, provider);
  const candidates = [{ deviceId: pair.alice.device.deviceId, identityKey: pair.alice.device.certificate.identityKey }];
  const sealIt = (message: Uint8Array, frankingTag: Uint8Array) =>
    seal.sealToContact(
      {
        recipientIdentityKey: pair.bob.device.certificate.identityKey,
        recipientCertificateHash: bobCertHash,
        senderIdentityPrivateKey: pair.alice.device.identityKeyPair.privateKey,
        senderDeviceId: pair.alice.device.deviceId,
        tokenHash,
        frankingTag,
        message,
      },
      provider,
    );
  const openIt = (sealed: Uint8Array, frankingTag: Uint8Array, cands = candidates) =>
    seal.openContactSeal(
      {
        seal: sealed,
        recipientIdentityPrivateKey: pair.bob.device.identityKeyPair.privateKey,
        recipientCertificateHash: bobCertHash,
        tokenHash,
        frankingTag,
        candidates: cands,
      },
      provider,
    );
  const probe = pair.aliceToBob.encryptWithTag(body);
  pair.bobToAlice.decrypt(probe.message, { frankingTag: tagOf(probe) });
  const sealedProbe = sealIt(probe.message, tagOf(probe));
  const added = sealedProbe.length - probe.message.length;
  const strangers = Array.from({ length: seal.MAX_SEAL_CANDIDATES }, (_, i) => ({
    deviceId: i + 1,
    identityKey: party(provider, i + 1).device.certificate.identityKey,
  }));
  return [
    {
      meta: {
        ...meta,
        op: 'sealed-1to1-unsealed',
        label: '1:1 send + open, 100 B, unsealed (v2)',
        note: `${probe.message.length} B message + 32 B franking tag beside it`,
      },
      family: 'sealed-1to1',
      task: {
        run() {
          const m = pair.aliceToBob.encryptWithTag(body);
          expectLength(pair.bobToAlice.decrypt(m.message, { frankingTag: tagOf(m) }).plaintext.length, SMALL);
        },
      },
    },
    {
      meta: {
        ...meta,
        op: 'sealed-1to1-sealed',
        label: '1:1 send + open, 100 B, sealed (v2)',
        note: `${sealedProbe.length} B sealed envelope: the seal adds ${added} B`,
      },
      family: 'sealed-1to1',
      task: {
        run() {
          const m = pair.aliceToBob.encryptWithTag(body);
          const opened = openIt(sealIt(m.message, tagOf(m)), tagOf(m));
          expectLength(pair.bobToAlice.decrypt(opened.message, { frankingTag: tagOf(m) }).plaintext.length, SMALL);
        },
      },
    },
    {
      meta: {
        ...meta,
        op: 'sealed-open-forged',
        label: `open a forged seal, ${seal.MAX_SEAL_CANDIDATES} candidates (worst case)`,
        note: `1 + ${seal.MAX_SEAL_CANDIDATES} X25519 and key schedules (spec 12 §4.3), then refused`,
      },
      family: 'sealed-1to1',
      task: {
        run() {
          try {
            openIt(sealedProbe, tagOf(probe), strangers);
          } catch {
            return;
          }
          throw new Error('a forged seal opened');
        },
      },
    },
  ];
}

interface Target {
  readonly identityKey: Uint8Array;
  readonly certHash: Uint8Array;
  readonly tokenHash: Uint8Array;
}

/** A recipient device that only receives seals: an X25519 identity key, a certificate hash, a token hash. */
function bareTarget(provider: CryptoProvider): Target {
  return {
    identityKey: provider.backend.x25519PublicKey(provider.random(32)),
    certHash: provider.random(32),
    tokenHash: provider.random(32),
  };
}

/** A v2 group of two devices; `encrypt` hands the recipient the new chain when the sender rotates. */
function groupOf(provider: CryptoProvider, sender: Party, recipient: Party) {
  const members = [memberOf(sender.device.certificate), memberOf(recipient.device.certificate)];
  const groupId = provider.random(32);
  const alice = GroupSession.create(sender.device, members, { groupId, provider });
  const bob = GroupSession.create(recipient.device, members, { groupId, provider });
  bob.processDistribution(alice.distribution().bytes, sender.device.certificate);
  return {
    bob,
    encrypt(body: Uint8Array): Uint8Array {
      const out = alice.encrypt(body, { version: 2 });
      // A rotation (every 1,000 messages) reaches the recipient as a one-to-one message; not part of the row.
      if (out.distribution) bob.processDistribution(out.distribution.bytes, sender.device.certificate);
      return out.message;
    },
  };
}

/** Group rows for N devices: sender side and one recipient's side, unsealed and sealed. */
export function sealedGroupEntries(backend: Backend, devices: number): Entry[] {
  const provider = providerFor(backend);
  // No groupSize: the size is in the op (`@N`); groupSize would add N to the group tables' sizes.
  const meta = { section: 'v2', subject: 'parley', variant: backend } as const;
  const sender = party(provider, 1);
  const recipient = party(provider, 1);
  // Two groups of the same two devices: one whose messages are only sent (the send rows), one whose
  // every message the recipient decrypts in order (the receive rows), so the send rows never leave the
  // recipient thousands of messages behind.
  const sending = groupOf(provider, sender, recipient);
  const receiving = groupOf(provider, sender, recipient);
  const first: Target = {
    identityKey: recipient.device.certificate.identityKey,
    certHash: certificateHash(recipient.device.certificate, provider),
    tokenHash: seal.deliveryTokenHash(recipient.account.publicKey, seal.newDeliveryToken(provider), provider),
  };
  const targets = [first, ...Array.from({ length: devices - 1 }, () => bareTarget(provider))];
  const body = payload(SMALL);
  const sealTo = (t: Target, wrap: Uint8Array) =>
    seal.sealToContact(
      {
        recipientIdentityKey: t.identityKey,
        recipientCertificateHash: t.certHash,
        senderIdentityPrivateKey: sender.device.identityKeyPair.privateKey,
        senderDeviceId: 1,
        tokenHash: t.tokenHash,
        frankingTag: null,
        message: wrap,
      },
      provider,
    );
  const sendSealed = () => {
    const message = sending.encrypt(body);
    const { payload: stored, wrap } = seal.sealGroupPayload(message, provider);
    const wraps = targets.map((t) => sealTo(t, wrap));
    return { message, stored, wraps };
  };
  const probe = sendSealed();
  const sealedBytes = probe.stored.length + probe.wraps.reduce((n, w) => n + w.length, 0);
  const wrapBytes = probe.wraps[0]?.length ?? 0;
  const senderCandidate = [{ deviceId: 1, identityKey: sender.device.certificate.identityKey }];
  const family = `sealed-group@${devices}`;
  return [
    {
      meta: {
        ...meta,
        op: `sealed-group-send-unsealed@${devices}`,
        label: `group send, ${devices} devices, unsealed (v2 message once, relay fan-out)`,
        note: `${probe.message.length} B uploaded once for all ${devices} devices (plus the device list)`,
      },
      family,
      task: { run: () => sending.encrypt(body) },
    },
    {
      meta: {
        ...meta,
        op: `sealed-group-send-sealed@${devices}`,
        label: `group send, ${devices} devices, sealed (payload + ${devices} sealed wraps)`,
        note: `${sealedBytes.toLocaleString('en-US')} B: payload ${probe.stored.length} B + ${devices} × ${wrapBytes} B; adds ${(sealedBytes - probe.message.length).toLocaleString('en-US')} B (${((sealedBytes - probe.message.length) / devices).toFixed(0)} B per device)`,
      },
      family,
      task: { run: () => sendSealed() },
      overrides: { maxIterations: 50 },
    },
    {
      meta: {
        ...meta,
        op: `sealed-group-open-unsealed@${devices}`,
        label: 'group receive, one device, unsealed (encrypt untimed)',
        note: 'verify the signature, check the franking tag, decrypt',
      },
      family,
      task: {
        prepare: (n: number) => Array.from({ length: n }, () => receiving.encrypt(body)),
        run(messages: Uint8Array[], i: number) {
          expectLength(receiving.bob.decrypt(messages[i] as Uint8Array).plaintext.length, SMALL);
        },
      },
      overrides: { maxIterations: 400 },
    },
    {
      meta: {
        ...meta,
        op: `sealed-group-open-sealed@${devices}`,
        label: 'group receive, one device, sealed (encrypt + seal untimed)',
        note: 'open the sealed wrap (1 candidate), open the payload, then as unsealed',
      },
      family,
      task: {
        prepare: (n: number) =>
          Array.from({ length: n }, () => {
            const message = receiving.encrypt(body);
            const { payload: stored, wrap } = seal.sealGroupPayload(message, provider);
            return { stored, sealed: sealTo(first, wrap) };
          }),
        run(items: { stored: Uint8Array; sealed: Uint8Array }[], i: number) {
          const item = items[i] as (typeof items)[number];
          const opened = seal.openContactSeal(
            {
              seal: item.sealed,
              recipientIdentityPrivateKey: recipient.device.identityKeyPair.privateKey,
              recipientCertificateHash: first.certHash,
              tokenHash: first.tokenHash,
              frankingTag: null,
              candidates: senderCandidate,
            },
            provider,
          );
          const message = seal.openGroupPayload(opened.message, item.stored, provider);
          expectLength(receiving.bob.decrypt(message).plaintext.length, SMALL);
        },
      },
      overrides: { maxIterations: 400 },
    },
  ];
}
