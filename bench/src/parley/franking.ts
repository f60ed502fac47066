/**
 * Issue 19's cost rows for core franking, run by hand:
 *
 *   node --conditions=parley:source --import tsx bench/src/parley/franking.ts [--iterations 2000]
 *
 * - bytes of a group message, v1 and v2 (franking tag in the signed header,
 *   franking key in the body), for 100 B and 1 KiB plaintexts: the padding
 *   class decides most of the difference;
 * - time per group message (encrypt + one member decrypt), v1 and v2, node
 *   backend, medians over interleaved samples;
 * - relay franks for a 1,000-device fan-out (1,000 HMACs), and one report
 *   verification.
 *
 * Medians on a shared machine: compare rows of one run, not across runs.
 */
import { performance } from 'node:perf_hooks';
import {
  Account,
  type CryptoProvider,
  type DeviceIdentity,
  GroupSession,
  type RelayFrankInput,
  cryptoProvider,
  frankKeyId,
  memberOf,
  relayFrank,
} from '@parley/core';
import { nodeBackend } from '@parley/core/node';

const iterations = Number(process.argv[process.argv.indexOf('--iterations') + 1]) || 2000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function pair(p: CryptoProvider): { alice: GroupSession; bob: GroupSession; aliceCertificate: DeviceIdentity['certificate'] } {
  const a: DeviceIdentity = Account.generate(p).createDevice(1, p);
  const b: DeviceIdentity = Account.generate(p).createDevice(1, p);
  const members = [memberOf(a.certificate), memberOf(b.certificate)];
  const groupId = p.random(32);
  const alice = GroupSession.create(a, members, { groupId, provider: p });
  const bob = GroupSession.create(b, members, { groupId, provider: p });
  bob.processDistribution(alice.distribution().bytes, a.certificate);
  return { alice, bob, aliceCertificate: a.certificate };
}

function main(): void {
  const p = cryptoProvider(nodeBackend);
  const rows: string[] = [];
  for (const size of [100, 1024]) {
    const { alice } = pair(p);
    const v1 = alice.encrypt(new Uint8Array(size)).message.length;
    const v2 = alice.encrypt(new Uint8Array(size), { version: 2 }).message.length;
    rows.push(`group message ${size} B: v1 ${v1} bytes, v2 ${v2} bytes (+${v2 - v1})`);
  }

  const { alice, bob, aliceCertificate } = pair(p);
  const pt = new Uint8Array(100);
  const t1: number[] = [];
  const t2: number[] = [];
  // A rotation (every 1,000 messages) hands Bob the new chain untimed; the row is the message itself.
  const roundTrip = (version: 1 | 2): number => {
    const t = performance.now();
    const out = alice.encrypt(pt, { version });
    if (out.distribution) {
      const pause = performance.now();
      bob.processDistribution(out.distribution.bytes, aliceCertificate);
      const paused = performance.now() - pause;
      bob.decrypt(out.message);
      return performance.now() - t - paused;
    }
    bob.decrypt(out.message);
    return performance.now() - t;
  };
  for (let i = 0; i < iterations; i++) {
    t1.push(roundTrip(1));
    t2.push(roundTrip(2));
  }
  rows.push(
    `group message 100 B encrypt + 1 decrypt (node): v1 ${(median(t1) * 1000).toFixed(0)} µs, v2 ${(median(t2) * 1000).toFixed(0)} µs (${iterations} interleaved samples)`,
  );

  const frankKey = p.random(32);
  const acceptedAt = Date.now();
  const inputs: RelayFrankInput[] = Array.from({ length: 1000 }, (_, d) => ({
    keyId: frankKeyId(acceptedAt),
    frankingTag: p.random(32),
    recipient: { accountKey: p.random(32), deviceId: 1 + (d % 5) },
    acceptedAt,
    envelopeId: p.random(16),
    sender: null,
  }));
  const fanout: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    for (const f of inputs) relayFrank(nodeBackend, frankKey, f);
    fanout.push(performance.now() - t);
  }
  rows.push(`relay franks for a 1,000-device fan-out (node): ${median(fanout).toFixed(2)} ms (median of 20)`);
  for (const r of rows) console.log(r);
}

main();
