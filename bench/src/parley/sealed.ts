/**
 * Sealed sender cost (issue 16, spec/12-sealed-sender.md): per message, the
 * unsealed same-direction encrypt+decrypt of 100 B and 1 KiB next to the
 * same with the seal made and opened around it, the seal and open alone,
 * the open of a forged seal that tries all 32 candidates (the most a hostile
 * envelope costs), and the bytes the seal adds. Both crypto backends.
 *
 *   node --import tsx bench/src/parley/sealed.ts [--quick] [--json]
 *
 * (NODE_OPTIONS=--conditions=parley:source when the packages are not built.)
 * Interleaved sampling (harness.ts), as the compared rows of the main suite.
 */
import { type CryptoProvider, GroupSession, certificateHash, memberOf, seal } from '@parley/core';
import { type MeasureOptions, type Stats, type Task, measureInterleaved } from '../harness.ts';
import { BACKENDS, establishedPair, party, payload, providerFor } from './fixtures.ts';

const quick = process.argv.includes('--quick');
const OPTIONS: MeasureOptions = quick
  ? { warmupSamples: 1, samples: 5, minSamples: 3, targetSampleMs: 20, maxIterations: 200, budgetMs: 1500 }
  : { warmupSamples: 3, samples: 15, minSamples: 5, targetSampleMs: 50, maxIterations: 2000, budgetMs: 6000 };

interface Row {
  readonly backend: string;
  readonly op: string;
  readonly label: string;
  readonly task: Task<unknown>;
  readonly bytes?: string;
}

function rows(backend: string, provider: CryptoProvider): Row[] {
  const out: Row[] = [];
  for (const size of [100, 1024]) {
    const pair = establishedPair(provider);
    const token = seal.newDeliveryToken(provider);
    const tokenHash = seal.deliveryTokenHash(pair.bob.account.publicKey, token, provider);
    const bobCert = pair.bob.device.certificate;
    const bobCertHash = certificateHash(bobCert, provider);
    const candidates = [{ deviceId: pair.alice.device.deviceId, identityKey: pair.alice.device.certificate.identityKey }];
    const body = payload(size);
    const sealIt = (message: Uint8Array) =>
      seal.sealToContact(
        {
          recipientIdentityKey: bobCert.identityKey,
          recipientCertificateHash: bobCertHash,
          senderIdentityPrivateKey: pair.alice.device.identityKeyPair.privateKey,
          senderDeviceId: pair.alice.device.deviceId,
          tokenHash,
          frankingTag: null,
          message,
        },
        provider,
      );
    const openIt = (sealed: Uint8Array, cands = candidates) =>
      seal.openContactSeal(
        {
          seal: sealed,
          recipientIdentityPrivateKey: pair.bob.device.identityKeyPair.privateKey,
          recipientCertificateHash: bobCertHash,
          tokenHash,
          frankingTag: null,
          candidates: cands,
        },
        provider,
      );
    const probe = pair.aliceToBob.encrypt(body);
    pair.bobToAlice.decrypt(probe);
    const sealedProbe = sealIt(probe);
    const bytes = `${probe.length} B -> ${sealedProbe.length} B sealed (+${sealedProbe.length - probe.length})`;
    out.push({
      backend,
      op: `unsealed-${size}`,
      label: `encrypt+decrypt ${size} B, unsealed`,
      bytes: `${probe.length} B`,
      task: {
        run: () => {
          if (pair.bobToAlice.decrypt(pair.aliceToBob.encrypt(body)).plaintext.length !== size) throw new Error('round trip');
        },
      },
    });
    out.push({
      backend,
      op: `sealed-${size}`,
      label: `encrypt+seal+open+decrypt ${size} B`,
      bytes,
      task: {
        run: () => {
          const opened = openIt(sealIt(pair.aliceToBob.encrypt(body)));
          if (pair.bobToAlice.decrypt(opened.message).plaintext.length !== size) throw new Error('round trip');
        },
      },
    });
    if (size === 100) {
      out.push({ backend, op: 'seal-only', label: 'seal (1 recipient device)', task: { run: () => sealIt(probe) } });
      out.push({ backend, op: 'open-only', label: 'open (1 candidate)', task: { run: () => openIt(sealedProbe) } });
      // A seal from someone else under a valid token: every one of 32 candidates is tried, none matches.
      const strangers = Array.from({ length: seal.MAX_SEAL_CANDIDATES }, (_, i) => {
        const p = party(provider, i + 1);
        return { deviceId: i + 1, identityKey: p.device.certificate.identityKey };
      });
      out.push({
        backend,
        op: 'open-forged-32',
        label: 'open a forged seal, 32 candidates (worst case)',
        task: {
          run: () => {
            try {
              openIt(sealedProbe, strangers);
            } catch {
              return;
            }
            throw new Error('a forged seal opened');
          },
        },
      });
    }
  }
  out.push(...groupRows(backend, provider));
  return out;
}

/** A short group text to 100 devices: sealed (one payload + a sealed wrap per device) next to the unsealed encrypt. */
function groupRows(backend: string, provider: CryptoProvider): Row[] {
  const n = 100;
  const sender = party(provider, 1);
  const recipients = Array.from({ length: n }, () => party(provider, 1));
  const members = [sender, ...recipients].map((p) => memberOf(p.device.certificate));
  const session = GroupSession.create(sender.device, members, { provider });
  const targets = recipients.map((r) => {
    const token = seal.newDeliveryToken(provider);
    return {
      identityKey: r.device.certificate.identityKey,
      certHash: certificateHash(r.device.certificate, provider),
      tokenHash: seal.deliveryTokenHash(r.account.publicKey, token, provider),
    };
  });
  const body = payload(100);
  const sendSealed = () => {
    const { message } = session.encrypt(body);
    const { payload: stored, wrap } = seal.sealGroupPayload(message, provider);
    let bytes = stored.length;
    for (const t of targets) {
      bytes += seal.sealToContact(
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
      ).length;
    }
    return { message, bytes };
  };
  const probe = sendSealed();
  const first = targets[0] as (typeof targets)[number];
  const recipient = recipients[0] as (typeof recipients)[number];
  const { payload: stored, wrap } = seal.sealGroupPayload(probe.message, provider);
  const sealedWrap = seal.sealToContact(
    {
      recipientIdentityKey: first.identityKey,
      recipientCertificateHash: first.certHash,
      senderIdentityPrivateKey: sender.device.identityKeyPair.privateKey,
      senderDeviceId: 1,
      tokenHash: first.tokenHash,
      frankingTag: null,
      message: wrap,
    },
    provider,
  );
  const senderCandidate = [{ deviceId: 1, identityKey: sender.device.certificate.identityKey }];
  return [
    {
      backend,
      op: 'group-100-unsealed',
      label: 'group 100 devices: encrypt 100 B (unsealed, one message copied per device)',
      bytes: `${probe.message.length * n} B (${probe.message.length} B × ${n})`,
      task: { run: () => session.encrypt(body) },
    },
    {
      backend,
      op: 'group-100-sealed',
      label: 'group 100 devices: encrypt + payload + 100 sealed wraps',
      bytes: `${probe.bytes} B (payload ${probe.message.length + 16} B + ${n} wraps)`,
      task: { run: () => sendSealed() },
    },
    {
      backend,
      op: 'group-open-wrap',
      label: 'group: open one sealed wrap and the payload (per recipient device)',
      task: {
        run: () => {
          const opened = seal.openContactSeal(
            {
              seal: sealedWrap,
              recipientIdentityPrivateKey: recipient.device.identityKeyPair.privateKey,
              recipientCertificateHash: first.certHash,
              tokenHash: first.tokenHash,
              frankingTag: null,
              candidates: senderCandidate,
            },
            provider,
          );
          seal.openGroupPayload(opened.message, stored, provider);
        },
      },
    },
  ];
}

async function main(): Promise<void> {
  const all = BACKENDS.flatMap((b) => rows(b, providerFor(b)));
  const results = await measureInterleaved(all.map((r) => ({ task: r.task, options: OPTIONS })));
  const table = all.map((r, i) => {
    const s = results[i] as Stats | Error;
    return {
      backend: r.backend,
      op: r.op,
      label: r.label,
      us: s instanceof Error ? null : Math.round(s.median * 10) / 10,
      bytes: r.bytes ?? '',
    };
  });
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(table, null, 2));
    return;
  }
  console.log('backend | operation | median µs (CPU) | bytes');
  console.log('--- | --- | ---: | ---');
  for (const r of table) console.log(`${r.backend} | ${r.label} | ${r.us ?? 'error'} | ${r.bytes}`);
}

await main();
