#!/usr/bin/env node
/**
 * The independent verifier: `npm run vectors:verify` (or
 * `node test-vectors/verifier/verify.mjs [dir]`).
 *
 * It recomputes every valid vector and checks that every invalid one is
 * refused with its error code, on a second implementation written from
 * spec/: Node's built-in crypto for every primitive it has, @noble/post-quantum
 * for ML-KEM-768 only, cborg for CBOR. It imports nothing from packages/core.
 * Where it disagrees with the vectors, either the implementation or the spec
 * is wrong; the spec is the arbiter.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkCbor } from './checks/cbor.mjs';
import { checkFranking } from './checks/franking.mjs';
import { checkGroups } from './checks/groups.mjs';
import { checkGroupsV2 } from './checks/groups-v2.mjs';
import { checkHandshake } from './checks/handshake.mjs';
import { checkHpke } from './checks/hpke.mjs';
import { checkKeys } from './checks/keys.mjs';
import { checkPadding } from './checks/padding.mjs';
import { checkPqChunks } from './checks/pq-chunks.mjs';
import { checkPqRatchet } from './checks/pq-ratchet.mjs';
import { checkPushFrames } from './checks/push-frames.mjs';
import { checkRatchet } from './checks/ratchet.mjs';
import { checkRatchetV2 } from './checks/ratchet-v2.mjs';
import { checkRecords } from './checks/records.mjs';
import { checkReports } from './checks/reports.mjs';
import { checkSafetyNumber } from './checks/safety-number.mjs';
import { checkVersions } from './checks/versions.mjs';
import { checkSeal } from './checks/seal.mjs';
import { FileCheck } from './lib/check.mjs';

const FILES = [
  'cbor.json',
  'keys.json',
  'handshake.json',
  'ratchet.json',
  'padding.json',
  'safety-number.json',
  'records.json',
  'groups.json',
  'hpke.json',
  'pq-chunks.json',
  'pq-ratchet.json',
  'franking.json',
  'groups-v2.json',
  'reports.json',
  'versions.json',
  'seal.json',
  'ratchet-v2.json',
  'push-frames.json',
];

/** Checks every vector file in `dir`; returns one report per file. */
export function verifyAll(dir = new URL('..', import.meta.url)) {
  const base = dir instanceof URL ? dir : pathToFileURL(`${resolve(dir)}/`);
  const load = (name) => new FileCheck(name, JSON.parse(readFileSync(new URL(name, base), 'utf8')));
  const files = Object.fromEntries(FILES.map((name) => [name, load(name)]));
  checkCbor(files['cbor.json']);
  checkKeys(files['keys.json']);
  checkHandshake(files['handshake.json']);
  const conversations = checkRatchet(files['ratchet.json']);
  checkPadding(files['padding.json']);
  checkSafetyNumber(files['safety-number.json']);
  checkRecords(files['records.json'], conversations);
  checkGroups(files['groups.json']);
  checkHpke(files['hpke.json']);
  checkPqChunks(files['pq-chunks.json']);
  checkPqRatchet(files['pq-ratchet.json']);
  checkFranking(files['franking.json']);
  checkGroupsV2(files['groups-v2.json']);
  checkReports(files['reports.json']);
  checkVersions(files['versions.json']);
  checkSeal(files['seal.json']);
  checkRatchetV2(files['ratchet-v2.json']);
  checkPushFrames(files['push-frames.json']);
  return FILES.map((name) => files[name].finish());
}

function main() {
  const dir = process.argv[2];
  const reports = verifyAll(dir ?? undefined);
  let failures = 0;
  for (const r of reports) {
    failures += r.failures.length;
    console.log(`${r.failures.length === 0 ? 'ok  ' : 'FAIL'} ${r.file}: ${r.tests} tests, ${r.failures.length} failed`);
    for (const x of r.failures) console.log(`     tcId ${x.tcId}${x.comment ? ` (${x.comment})` : ''}: ${x.message}`);
  }
  const total = reports.reduce((n, r) => n + r.tests, 0);
  console.log(failures === 0 ? `all ${total} vectors verified` : `${failures} of ${total} vectors failed`);
  process.exitCode = failures === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
