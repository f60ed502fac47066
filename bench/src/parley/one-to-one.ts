/**
 * Parley one-to-one scenarios, each on both crypto backends. Issue 5 §1:
 * session setup (bundle processing, first message, responder),
 * same-direction encrypt+decrypt of 100 B and 1 KiB, ping-pong (a DH
 * ratchet step on every message), decrypt after 1,000 skipped messages
 * (and, the other side of that gap, of one of the late messages), record
 * serialize and deserialize.
 *
 * Every timed body checks the decrypted length, so a scenario that stopped
 * round-tripping fails loudly instead of timing an error path.
 */
import { type CryptoProvider, PreKeyStore, SessionRecord, decodeBundle, encodeBundle } from '@parley/core';
import type { MeasureOptions, Task } from '../harness.ts';
import type { Entry } from '../runner.ts';
import { BACKENDS, establishedPair, party, payload, providerFor } from './fixtures.ts';

function expectLength(plaintext: Uint8Array, length: number): void {
  if (plaintext.length !== length) throw new Error(`round trip returned ${plaintext.length} bytes, expected ${length}`);
}

/** Bundles (as wire bytes) for `n` sessions, each with its own one-time X25519 and KEM prekeys. */
function setupBatch(provider: CryptoProvider, n: number) {
  const alice = party(provider, 1);
  const bob = party(provider, 2);
  const prekeys = PreKeyStore.generate(bob.device, { oneTimePreKeys: n, kemPreKeys: n }, provider);
  const oneTime = prekeys.oneTimePreKeys();
  const kem = prekeys.kemPreKeys();
  const bundles = oneTime.map((otk, i) =>
    encodeBundle({ ...prekeys.bundle(), oneTimePreKey: otk, kemPreKey: kem[i] ?? prekeys.lastResortKemPreKey() }),
  );
  return { alice, bob, prekeys, bundles };
}

/** One measurable Parley operation: what it is, its task, and any sampling overrides. */
export interface Scenario {
  readonly meta: { op: string; label: string; note?: string };
  // biome-ignore lint/suspicious/noExplicitAny: each scenario's task has its own context type
  readonly task: Task<any>;
  readonly overrides?: Partial<MeasureOptions>;
}

/** Parley's one-to-one entries on both backends, for the interleaved comparison. */
export function parleyOneToOneEntries(quick: boolean): Entry[] {
  return BACKENDS.flatMap((backend) =>
    [...oneToOneScenarios(providerFor(backend), quick)].map((s) => ({
      meta: { section: 'one-to-one', subject: 'parley', variant: backend, ...s.meta } as const,
      task: s.task,
      ...(s.overrides ? { overrides: s.overrides } : {}),
    })),
  );
}

/**
 * The one-to-one scenarios for one provider, in report order. Built lazily
 * (each scenario's parties are created when the generator reaches it), so
 * the sessions a scenario uses are fresh when it is timed.
 */
export function* oneToOneScenarios(provider: CryptoProvider, quick: boolean): Generator<Scenario> {
  const small = payload(100);
  const kib = payload(1024);

  yield {
    meta: {
      op: 'setup',
      label: 'setup: bundle decode+verify, PQXDH, 1st msg, responder',
      note: 'PQXDH with ML-KEM-768 and a one-time prekey; first message carries 100 B',
    },
    task: {
      prepare: (n: number) => setupBatch(provider, n),
      run(ctx: ReturnType<typeof setupBatch>, i: number) {
        const bundle = decodeBundle(ctx.bundles[i] as Uint8Array);
        const initiator = SessionRecord.initiate(ctx.alice.device, bundle, { provider });
        const first = initiator.encrypt(small);
        const responder = new SessionRecord(provider);
        expectLength(responder.decrypt(first, { device: ctx.bob.device, prekeys: ctx.prekeys }).plaintext, 100);
      },
    },
    overrides: { maxIterations: quick ? 5 : 40 },
  };

  for (const [op, bytes, label] of [
    ['same-direction-100', small, 'same-direction encrypt+decrypt, 100 B'],
    ['same-direction-1024', kib, 'same-direction encrypt+decrypt, 1 KiB'],
  ] as const) {
    const pair = establishedPair(provider);
    const probe = pair.aliceToBob.encrypt(bytes);
    pair.bobToAlice.decrypt(probe); // delivered, so Bob holds no skipped keys
    yield {
      meta: { op, label, note: `${probe.length} B on the wire (plaintext padded inside the AEAD)` },
      task: {
        run() {
          expectLength(pair.bobToAlice.decrypt(pair.aliceToBob.encrypt(bytes)).plaintext, bytes.length);
        },
      },
    };
  }

  {
    const pair = establishedPair(provider);
    let turn = 0;
    yield {
      meta: { op: 'ping-pong', label: 'ping-pong, 100 B (DH ratchet step per message)' },
      task: {
        run() {
          // A turn counter, not the sample index: samples may hold an odd number of iterations.
          const [from, to] = turn++ % 2 === 0 ? [pair.aliceToBob, pair.bobToAlice] : [pair.bobToAlice, pair.aliceToBob];
          expectLength(to.decrypt(from.encrypt(small)).plaintext, 100);
        },
      },
    };
  }

  {
    // Bob holds Alice's current chain; Alice sends 1,000 messages that are lost, then one that arrives.
    const pair = establishedPair(provider);
    pair.bobToAlice.decrypt(pair.aliceToBob.encrypt(small));
    for (let i = 0; i < 1000; i++) pair.aliceToBob.encrypt(small);
    const late = pair.aliceToBob.encrypt(small);
    const bobState = pair.bobToAlice.serialize();
    yield {
      meta: {
        op: 'skipped-1000',
        label: 'decrypt after 1,000 skipped (same chain)',
        note: 'derives and stores 1,000 skipped message keys',
      },
      task: {
        prepare: (n: number) => Array.from({ length: n }, () => SessionRecord.deserialize(bobState, provider)),
        run(copies: SessionRecord[], i: number) {
          expectLength((copies[i] as SessionRecord).decrypt(late).plaintext, 100);
        },
      },
      overrides: { maxIterations: quick ? 20 : 200 },
    };
  }

  {
    // The other side of the gap: one of the 1,000 late messages arrives while Bob holds all their keys.
    const pair = establishedPair(provider);
    pair.bobToAlice.decrypt(pair.aliceToBob.encrypt(small));
    const late: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) late.push(pair.aliceToBob.encrypt(small));
    pair.bobToAlice.decrypt(pair.aliceToBob.encrypt(small));
    const bobState = pair.bobToAlice.serialize();
    yield {
      meta: {
        op: 'late-of-1000',
        label: 'decrypt a late message (1,000 skipped keys held)',
        note: 'uses and deletes one stored key',
      },
      task: {
        prepare: (n: number) => Array.from({ length: n }, () => SessionRecord.deserialize(bobState, provider)),
        run(copies: SessionRecord[], i: number) {
          expectLength((copies[i] as SessionRecord).decrypt(late[(i * 7) % 1000] as Uint8Array).plaintext, 100);
        },
      },
      overrides: { maxIterations: quick ? 20 : 200 },
    };
  }

  {
    // A record in steady state: a few round trips, so it holds receiving chains but no skipped keys.
    const pair = establishedPair(provider);
    for (let i = 0; i < 6; i++) {
      const [from, to] = i % 2 === 0 ? [pair.aliceToBob, pair.bobToAlice] : [pair.bobToAlice, pair.aliceToBob];
      to.decrypt(from.encrypt(small));
    }
    const bytes = pair.aliceToBob.serialize();
    const note = `${bytes.length} B record (current session, no archived ones)`;
    yield { meta: { op: 'serialize', label: 'session record serialize', note }, task: { run: () => pair.aliceToBob.serialize() } };
    yield {
      meta: { op: 'deserialize', label: 'session record deserialize', note },
      task: { run: () => SessionRecord.deserialize(bytes, provider) },
    };
  }
}
