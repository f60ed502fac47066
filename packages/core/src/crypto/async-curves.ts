/**
 * Runs a synchronous core operation on asynchronous curve implementations
 * (the browser's WebCrypto X25519 and Ed25519), behind the ordinary
 * synchronous `CryptoBackend` interface. spec/01-conventions.md §4.2.1.
 *
 * Why replay and not an asynchronous core: every core operation is a pure,
 * transactional function of its inputs, its randomness and its primitives'
 * answers (a refused or interrupted operation leaves every record as it
 * was, 04 §4.6). So `runWithAsyncCurves` runs the operation with a backend
 * that answers curve calls from a table of results already computed; the
 * first call it cannot answer interrupts the run (a `CurveSuspend` throw),
 * the driver awaits that one curve operation, adds it to the table and runs
 * the operation again from the start. Random draws (and ML-KEM results, which
 * cost more than curve operations on noble) are recorded and replayed
 * in order, so every run sees the same bytes and asks for the same curve
 * operations in the same order; the last run finds every answer and is the
 * one whose result (or error) is returned. The session layer, its record
 * formats and its failure rules stay exactly as they are, and the result is
 * byte-identical to a run on a synchronous backend given the same randomness
 * (tested in test/async-curves.test.ts).
 *
 * The price is re-running the cheap symmetric work (hashes, AEAD, CBOR) once
 * per curve operation; a ratchet step has three curve operations, so its
 * symmetric work runs four times, far less than what WebCrypto saves on the
 * curves in a browser (bench/results/browser.md).
 *
 * Rules that keep a replayed run honest:
 * - once a run is interrupted, every later primitive call of that run throws
 *   too, so code that catches the interruption (a trial decryption loop, a
 *   "never throws" verify wrapper) cannot go on to a result;
 * - the result of an interrupted run is discarded, whatever it was;
 * - a run that asks for different curve inputs or random lengths than the
 *   run before it at the same position is not deterministic, and fails with
 *   an Error (a programming error, never a peer's doing);
 * - at most `MAX_ASYNC_CURVE_OPS` operations are sent to the asynchronous
 *   implementation per call; past that the base backend answers the rest
 *   synchronously, so the number of runs is bounded whatever the operation.
 *
 * Secrets: the table holds private keys and shared secrets only for the
 * duration of one call, in byte arrays that are zeroed before it returns;
 * every answer handed to the operation is a copy (core wipes what it is given).
 */
import { constantTimeEqual } from '../bytes.ts';
import type { CryptoBackend, KemEncapsulation, KemKeyPair } from './backend.ts';
import { isRefusedEd25519Key } from './ed25519-keys.ts';
import { type CryptoProvider, defaultProvider } from './provider.ts';

/** The five curve operations, asynchronously, with the contract of backend.ts. */
export interface AsyncCurves {
  x25519PublicKey(privateKey: Uint8Array): Promise<Uint8Array>;
  /** Raw X25519; 32 zero bytes for a low-order public key, as the synchronous backends. */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array>;
  ed25519PublicKey(seed: Uint8Array): Promise<Uint8Array>;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  /** Never throws. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

type CurveOp = keyof AsyncCurves;
/** ML-KEM calls are not awaited, but recorded like curve calls so that a replayed run does not repeat them (they cost more than a curve operation on noble). */
type KemOp = 'mlkemKeygen' | 'mlkemEncapsulate' | 'mlkemDecapsulate';
type RecordedOp = CurveOp | KemOp;
type OpResult = Uint8Array | boolean | KemKeyPair | KemEncapsulation;

/**
 * Curve operations sent to the asynchronous implementation in one call.
 * The largest core operations need far fewer: accepting a PreKeyMessage is
 * about 9 (two signature checks, four X25519, a key generation and the
 * sending half of the ratchet step); checking a 64-device list is about 70
 * verifications, which past this bound run on the base backend instead of
 * costing 64 re-runs. Each re-run repeats the symmetric work, so the bound
 * also bounds the work a call can repeat.
 */
export const MAX_ASYNC_CURVE_OPS = 32;

/** What one `runWithAsyncCurves` call did (for tests and the bench). */
export interface AsyncCurveStats {
  /** How many times the operation was run (1 + the curve operations awaited). */
  runs: number;
  /** Curve operations answered by the asynchronous implementation. */
  asyncOps: number;
  /** Curve operations answered synchronously by the base backend past the bound. */
  syncOps: number;
}

export interface AsyncCurveOptions {
  /** Backend for everything but the awaited curves, and randomness. Default: the platform provider (noble in browsers). */
  base?: CryptoProvider;
  /** Default `MAX_ASYNC_CURVE_OPS`. */
  maxAsyncOps?: number;
  onStats?: (stats: AsyncCurveStats) => void;
}

/** Thrown inside a run to interrupt it; never escapes `runWithAsyncCurves`. */
class CurveSuspend extends Error {
  constructor() {
    super('curve operation pending (replayed run interrupted)');
    this.name = 'CurveSuspend';
  }
}

interface Recorded {
  readonly op: RecordedOp;
  readonly args: Uint8Array[];
  readonly result: OpResult;
}

function copyResult<R extends OpResult>(result: R): R {
  const r: OpResult = result;
  if (typeof r === 'boolean') return result;
  if (r instanceof Uint8Array) return Uint8Array.from(r) as R;
  if ('secretKey' in r) return { publicKey: Uint8Array.from(r.publicKey), secretKey: Uint8Array.from(r.secretKey) } as R;
  return { ciphertext: Uint8Array.from(r.ciphertext), sharedSecret: Uint8Array.from(r.sharedSecret) } as R;
}

function wipeResult(result: OpResult): void {
  if (typeof result === 'boolean') return;
  const parts =
    result instanceof Uint8Array
      ? [result]
      : 'secretKey' in result
        ? [result.publicKey, result.secretKey]
        : [result.ciphertext, result.sharedSecret];
  parts.forEach(wipe);
}

function sameArgs(known: Recorded, op: RecordedOp, args: Uint8Array[]): boolean {
  return known.op === op && known.args.length === args.length && known.args.every((a, i) => constantTimeEqual(a, args[i] as Uint8Array));
}

function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}

/** The state that survives from one run of a call to the next. */
class Replay {
  readonly recorded: Recorded[] = [];
  readonly draws: Uint8Array[] = [];
  pending: { op: CurveOp; args: Uint8Array[] } | null = null;
  runs = 0;
  asyncOps = 0;
  syncOps = 0;

  constructor(
    readonly base: CryptoProvider,
    readonly maxAsyncOps: number,
  ) {}

  wipe(): void {
    for (const r of this.recorded) {
      r.args.forEach(wipe);
      wipeResult(r.result);
    }
    this.draws.forEach(wipe);
    this.recorded.length = 0;
    this.draws.length = 0;
  }
}

/** One run: answers from the replay table, interrupts on the first unanswered curve call. */
class Run {
  private opIndex = 0;
  private drawIndex = 0;
  interrupted = false;

  constructor(private readonly replay: Replay) {}

  private stopIfInterrupted(): void {
    if (this.interrupted) throw new CurveSuspend();
  }

  curve<R extends OpResult>(op: RecordedOp, args: Uint8Array[], compute: () => R): R {
    this.stopIfInterrupted();
    const replay = this.replay;
    const index = this.opIndex++;
    const known = replay.recorded[index];
    if (known) {
      if (!sameArgs(known, op, args)) {
        throw new Error('runWithAsyncCurves: the operation is not deterministic (different inputs on a replayed run)');
      }
      return copyResult(known.result as R);
    }
    const kem = op === 'mlkemKeygen' || op === 'mlkemEncapsulate' || op === 'mlkemDecapsulate';
    if (kem || replay.asyncOps >= replay.maxAsyncOps) {
      const result = compute();
      replay.recorded.push({ op, args: args.map((a) => Uint8Array.from(a)), result: copyResult(result) });
      if (!kem) replay.syncOps++;
      return result;
    }
    replay.pending = { op: op as CurveOp, args: args.map((a) => Uint8Array.from(a)) };
    this.interrupted = true;
    throw new CurveSuspend();
  }

  random(length: number): Uint8Array {
    this.stopIfInterrupted();
    const replay = this.replay;
    const index = this.drawIndex++;
    const known = replay.draws[index];
    if (known) {
      if (known.length !== length)
        throw new Error('runWithAsyncCurves: the operation is not deterministic (different random draws on a replayed run)');
      return Uint8Array.from(known);
    }
    const fresh = replay.base.random(length);
    replay.draws.push(Uint8Array.from(fresh));
    return fresh;
  }

  provider(): CryptoProvider {
    const base = this.replay.base.backend;
    const guard =
      <A extends unknown[], R>(f: (...a: A) => R) =>
      (...a: A): R => {
        this.stopIfInterrupted();
        return f(...a);
      };
    const backend: CryptoBackend = {
      name: 'async-curves',
      x25519PublicKey: (priv) => this.curve('x25519PublicKey', [priv], () => base.x25519PublicKey(priv)) as Uint8Array,
      x25519: (priv, pub) => this.curve('x25519', [priv, pub], () => base.x25519(priv, pub)) as Uint8Array,
      ed25519PublicKey: (seed) => this.curve('ed25519PublicKey', [seed], () => base.ed25519PublicKey(seed)) as Uint8Array,
      ed25519Sign: (seed, msg) => this.curve('ed25519Sign', [seed, msg], () => base.ed25519Sign(seed, msg)) as Uint8Array,
      ed25519Verify: (pub, msg, sig) => {
        this.stopIfInterrupted();
        // The same refusals as the synchronous backends, before any await:
        // wrong lengths, and keys with a torsion component (02 §2.4), which
        // WebCrypto's verify does not refuse on its own.
        if (!(pub instanceof Uint8Array) || pub.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
        if (isRefusedEd25519Key(pub)) return false;
        return this.curve('ed25519Verify', [pub, msg, sig], () => base.ed25519Verify(pub, msg, sig)) as boolean;
      },
      sha256: guard((d) => base.sha256(d)),
      sha512: guard((d) => base.sha512(d)),
      hmacSha256: guard((k, d) => base.hmacSha256(k, d)),
      hkdfSha256: guard((ikm, salt, info, n) => base.hkdfSha256(ikm, salt, info, n)),
      aeadSeal: guard((k, n, p, ad) => base.aeadSeal(k, n, p, ad)),
      aeadOpen: guard((k, n, s, ad) => base.aeadOpen(k, n, s, ad)),
      mlkemKeygen: (seed) => this.curve('mlkemKeygen', [seed], () => base.mlkemKeygen(seed)),
      mlkemEncapsulate: (pub, m) => this.curve('mlkemEncapsulate', [pub, m], () => base.mlkemEncapsulate(pub, m)),
      mlkemDecapsulate: (ct, sk) => this.curve('mlkemDecapsulate', [ct, sk], () => base.mlkemDecapsulate(ct, sk)),
      randomBytes: (n) => this.random(n),
    };
    return Object.freeze({ backend: Object.freeze(backend), random: (n: number) => this.random(n) });
  }
}

async function answer(curves: AsyncCurves, op: CurveOp, args: Uint8Array[]): Promise<Uint8Array | boolean> {
  switch (op) {
    case 'x25519PublicKey':
      return curves.x25519PublicKey(args[0] as Uint8Array);
    case 'x25519':
      return curves.x25519(args[0] as Uint8Array, args[1] as Uint8Array);
    case 'ed25519PublicKey':
      return curves.ed25519PublicKey(args[0] as Uint8Array);
    case 'ed25519Sign':
      return curves.ed25519Sign(args[0] as Uint8Array, args[1] as Uint8Array);
    case 'ed25519Verify':
      return curves.ed25519Verify(args[0] as Uint8Array, args[1] as Uint8Array, args[2] as Uint8Array);
  }
}

/**
 * Runs `operation` (a synchronous, transactional core call that takes a
 * provider) with its curve operations answered by `curves`, and returns its
 * result or throws its error, exactly as a run on the base backend with the
 * same randomness would. `operation` may run several times: it must not have
 * effects outside core's own records (do store writes after this resolves).
 */
export async function runWithAsyncCurves<T>(
  curves: AsyncCurves,
  operation: (provider: CryptoProvider) => T,
  options: AsyncCurveOptions = {},
): Promise<T> {
  const replay = new Replay(options.base ?? defaultProvider(), options.maxAsyncOps ?? MAX_ASYNC_CURVE_OPS);
  try {
    const outcome = await drive(curves, operation, replay);
    if (outcome.ok) return outcome.value;
    throw outcome.error;
  } finally {
    options.onStats?.({ runs: replay.runs, asyncOps: replay.asyncOps, syncOps: replay.syncOps });
    replay.wipe();
  }
}

/** Curve answers and random draws computed ahead of a synchronous transaction; see `prepareAsyncCurves`. */
export interface PreparedCurves {
  /**
   * A synchronous provider: it answers the prepared operation's curve calls
   * and random draws in the order they were prepared, and everything else
   * (and everything after the first call that differs from the preparation)
   * on the base provider.
   */
  readonly provider: CryptoProvider;
  readonly stats: AsyncCurveStats;
  /** Zeroes the prepared keys, secrets and draws; the provider then uses the base for everything. */
  wipe(): void;
}

/**
 * For callers whose operation must run inside a synchronous transaction
 * (the client SDK's store, 10 §1): runs `operation` speculatively on the
 * asynchronous curves, outside the transaction, and discards its result and
 * error; then the transaction runs the operation for real on the prepared
 * provider, which answers the same curve calls without waiting. If the
 * state changed in between, the first call that differs and every later one
 * run on the base backend: slower, never wrong. Each prepared random draw is
 * handed out once, to the transaction's run (the speculative run's outputs
 * are discarded, never sent or stored), so no key or nonce is used twice.
 */
export async function prepareAsyncCurves(
  curves: AsyncCurves,
  operation: (provider: CryptoProvider) => unknown,
  options: AsyncCurveOptions = {},
): Promise<PreparedCurves> {
  const base = options.base ?? defaultProvider();
  const replay = new Replay(base, options.maxAsyncOps ?? MAX_ASYNC_CURVE_OPS);
  try {
    await drive(curves, operation, replay);
  } catch (error) {
    replay.wipe();
    throw error;
  }
  const stats = { runs: replay.runs, asyncOps: replay.asyncOps, syncOps: replay.syncOps };
  options.onStats?.(stats);
  return new Prepared(replay, base, stats);
}

async function drive<T>(
  curves: AsyncCurves,
  operation: (provider: CryptoProvider) => T,
  replay: Replay,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  for (;;) {
    replay.runs++;
    const run = new Run(replay);
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: operation(run.provider()) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    if (!run.interrupted) return outcome;
    const pending = replay.pending as { op: CurveOp; args: Uint8Array[] };
    replay.pending = null;
    const result = await answer(curves, pending.op, pending.args);
    replay.recorded.push({ op: pending.op, args: pending.args, result });
    replay.asyncOps++;
  }
}

/** The synchronous provider of a preparation: the recorded answers in order until the first difference. */
class Prepared implements PreparedCurves {
  readonly provider: CryptoProvider;
  private opIndex = 0;
  private drawIndex = 0;
  private diverged = false;

  constructor(
    private readonly replay: Replay,
    base: CryptoProvider,
    readonly stats: AsyncCurveStats,
  ) {
    const b = base.backend;
    const random = (n: number) => this.draw(n);
    const backend: CryptoBackend = {
      ...b,
      name: 'async-curves',
      x25519PublicKey: (priv) => this.curve('x25519PublicKey', [priv], () => b.x25519PublicKey(priv)) as Uint8Array,
      x25519: (priv, pub) => this.curve('x25519', [priv, pub], () => b.x25519(priv, pub)) as Uint8Array,
      ed25519PublicKey: (seed) => this.curve('ed25519PublicKey', [seed], () => b.ed25519PublicKey(seed)) as Uint8Array,
      ed25519Sign: (seed, msg) => this.curve('ed25519Sign', [seed, msg], () => b.ed25519Sign(seed, msg)) as Uint8Array,
      ed25519Verify: (pub, msg, sig) => {
        if (!(pub instanceof Uint8Array) || pub.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
        if (isRefusedEd25519Key(pub)) return false;
        return this.curve('ed25519Verify', [pub, msg, sig], () => b.ed25519Verify(pub, msg, sig)) as boolean;
      },
      mlkemKeygen: (seed) => this.curve('mlkemKeygen', [seed], () => b.mlkemKeygen(seed)),
      mlkemEncapsulate: (pub, m) => this.curve('mlkemEncapsulate', [pub, m], () => b.mlkemEncapsulate(pub, m)),
      mlkemDecapsulate: (ct, sk) => this.curve('mlkemDecapsulate', [ct, sk], () => b.mlkemDecapsulate(ct, sk)),
      randomBytes: random,
    };
    this.provider = Object.freeze({ backend: Object.freeze(backend), random });
  }

  private curve<R extends OpResult>(op: RecordedOp, args: Uint8Array[], compute: () => R): R {
    if (!this.diverged) {
      const known = this.replay.recorded[this.opIndex++];
      if (known && sameArgs(known, op, args)) return copyResult(known.result as R);
      this.diverged = true;
    }
    return compute();
  }

  private draw(length: number): Uint8Array {
    if (!this.diverged) {
      const known = this.replay.draws[this.drawIndex++];
      if (known && known.length === length) {
        const out = Uint8Array.from(known);
        // Handed out once: a second use of these bytes could repeat a key or a nonce.
        wipe(known);
        return out;
      }
      this.diverged = true;
    }
    return this.replay.base.random(length);
  }

  wipe(): void {
    this.diverged = true;
    this.replay.wipe();
  }
}
