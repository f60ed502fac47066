/**
 * The packages as a stranger gets them: `npm pack` of @parley/core,
 * @parley/relay and @parley/client, installed from the tarballs into a
 * fresh project outside the repository (no workspace, no source condition,
 * no TypeScript loader), and used there:
 *
 *  - each tarball holds dist/, README.md, LICENSE and package.json only, and
 *    `npm publish --dry-run` warns about nothing but the missing login;
 *  - the install prints no EBADENGINE warning on this Node;
 *  - the root README's core example runs with plain `node`;
 *  - a small consumer type-checks under `strict` (declarations included:
 *    skipLibCheck off);
 *  - the installed commands (`parley-relay`, `parley`) run;
 *  - core and client bundled for the browser by esbuild run in headless
 *    Chromium on a page of another origin: two clients register through the
 *    installed relay (CORS allowing the page), set up a session (PQXDH) and
 *    deliver a message; the same page against a relay without CORS fails.
 *
 * The install resolves dependencies from npm's cache (`--prefer-offline`;
 * CI's `npm ci` fills it) and skips install scripts: the one native module,
 * better-sqlite3, gets the binding already built for the repository.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ChromiumProfile,
  type StaticServer,
  chromiumSkipReason,
  launchFreshProfile,
  modulePage,
  serveStatic,
} from '../packages/core/test/support/browser-page.ts';
import { bundleForBrowser } from '../packages/core/test/support/browser-bundle.ts';
import { ROOT, ensureBuilt, plainNodeEnv } from './support/build.ts';
import { killAll, runRelay, startRelay } from './support/relay-process.ts';

const run = promisify(execFile);
const PACKAGES = ['core', 'relay', 'client'] as const;
const skipReason = chromiumSkipReason('packaging.test.ts: the browser run');

interface PackedFile {
  readonly path: string;
}
interface Packed {
  readonly name: string;
  readonly filename: string;
  readonly files: readonly PackedFile[];
}

let work: string;
let app: string;
let packed: Packed[];
let installLog: string;

async function npm(args: readonly string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run('npm', [...args], { cwd, env: plainNodeEnv({ npm_config_update_notifier: 'false' }), maxBuffer: 64 * 1024 * 1024 });
}

beforeAll(async () => {
  await ensureBuilt();
  work = mkdtempSync(join(tmpdir(), 'parley-packaging-'));
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  // Scripts are skipped: ensureBuilt() built dist/ (prepack would clean-build it again).
  const workspaces = PACKAGES.flatMap((p) => ['-w', `@parley/${p}`]);
  packed = JSON.parse((await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tarballs, ...workspaces], ROOT)).stdout);

  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'parley-consumer', private: true, type: 'module' }));
  const { stdout, stderr } = await npm(
    [
      'install',
      '--prefer-offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      ...packed.map((p) => join(tarballs, p.filename)),
      '@types/node@^20.19',
    ],
    app,
  );
  installLog = stdout + stderr;
  const binding = join('build', 'Release', 'better_sqlite3.node');
  mkdirSync(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release'), { recursive: true });
  copyFileSync(join(ROOT, 'node_modules', 'better-sqlite3', binding), join(app, 'node_modules', 'better-sqlite3', binding));
}, 300_000);

afterAll(() => {
  killAll();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('each tarball holds dist/, README.md, LICENSE and package.json, nothing else', () => {
    expect(packed.map((p) => p.name).sort()).toEqual(['@parley/client', '@parley/core', '@parley/relay']);
    for (const p of packed) {
      const paths = p.files.map((f) => f.path);
      const stray = paths.filter((f) => !(f.startsWith('dist/') || ['README.md', 'LICENSE', 'package.json'].includes(f)));
      expect(stray, p.name).toEqual([]);
      expect(paths, p.name).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'package.json', 'dist/index.js', 'dist/index.d.ts']));
      // Source maps carry the sources inline: no src/ needed to debug.
      expect(paths.some((f) => f.endsWith('.js.map'))).toBe(true);
    }
  });

  it.each(PACKAGES)('npm publish --dry-run of @parley/%s warns about nothing but the missing login', async (name) => {
    const { stderr } = await npm(['publish', '--dry-run', '--ignore-scripts', '-w', `@parley/${name}`], ROOT);
    const warnings = stderr.split('\n').filter((l) => /npm (warn|error)/i.test(l) && !/requires you to be logged in/.test(l));
    expect(warnings).toEqual([]);
  });
});

describe('installed from the tarballs into a project outside the repository', () => {
  it('installs without an EBADENGINE warning', () => {
    expect(installLog).not.toMatch(/EBADENGINE/);
    expect(app.startsWith(ROOT)).toBe(false);
  });

  it.each([
    ['the root README', join(ROOT, 'README.md')],
    ["@parley/core's README as installed", 'node_modules/@parley/core/README.md'],
  ])("runs %s's core example with plain node", async (_name, readmePath) => {
    const readme = readFileSync(resolve(app, readmePath), 'utf8');
    const example = /<!-- example:start -->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    writeFileSync(join(app, 'example.mjs'), example as string);
    const { stdout } = await run(process.execPath, ['example.mjs'], { cwd: app, env: plainNodeEnv() });
    expect(stdout.trim().split('\n')).toEqual(['hello Bob', 'hi Alice', 'safety numbers match: true']);
  });

  it('type-checks a strict TypeScript consumer, declarations included', async () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noUncheckedIndexedAccess: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    writeFileSync(
      join(app, 'consumer.ts'),
      `import { Account, PreKeyStore, SessionRecord, type PreKeyBundle, utf8 } from '@parley/core';
import { MemoryStore, ParleyClient, type ClientStore } from '@parley/client';
import { SqliteStore, connectRelayNode } from '@parley/client/node';
import { type RelayConfig, withDefaults } from '@parley/relay';

const alice = Account.generate();
const device = alice.createDevice(1);
const bundle: PreKeyBundle = PreKeyStore.generate(device, { oneTimePreKeys: 1, kemPreKeys: 1 }).bundle();
const session: SessionRecord = SessionRecord.initiate(device, bundle, { expectedAccountKey: alice.publicKey });
export const ciphertext: Uint8Array = session.encrypt(utf8('typed'));
export const store: ClientStore = new MemoryStore();
export const durable: ClientStore = new SqliteStore(':memory:');
export const config: RelayConfig = withDefaults({ port: 0, corsOrigins: ['https://chat.example'] });
export async function connect(url: string): Promise<ParleyClient> {
  return ParleyClient.createAccount({ store, relay: connectRelayNode(url) });
}
// @ts-expect-error a session encrypts bytes, not strings: the declarations carry real types
session.encrypt('untyped');
`,
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', app], { cwd: app, env: plainNodeEnv() }).catch((e: { stdout: string }) => e);
    expect(result.stdout).toBe('');
  });

  it('the installed commands run: parley-relay --help and parley --help', async () => {
    const bin = join(app, 'node_modules', '.bin');
    const relayHelp = await run(join(bin, 'parley-relay'), ['--help'], { cwd: work, env: plainNodeEnv() });
    expect(relayHelp.stdout).toContain('PARLEY_DATABASE_URL');
    const chat = await run(join(bin, 'parley'), ['--help'], { cwd: work, env: plainNodeEnv() }).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    expect(chat.stdout + chat.stderr).toMatch(/usage: parley/);
  });

  it('the installed relay answers on SQLite', async () => {
    const bin = join(app, 'node_modules', '@parley', 'relay', 'dist', 'cli', 'bin.js');
    const r = await runRelay(['migrate', '--data-dir', join(work, 'relay-data')], {}, bin);
    expect(r.stdout).toContain('schema up to date');
  });
});

describe.skipIf(skipReason !== null)('core and client bundled for the browser (installed packages, headless Chromium)', () => {
  let page: StaticServer | undefined;
  let chromium: ChromiumProfile | undefined;
  afterAll(async () => {
    await chromium?.close();
    await page?.close();
  });

  it('a page on another origin registers two clients through a relay with CORS, runs a handshake and delivers a message; without CORS it cannot', async () => {
    writeFileSync(
      join(app, 'browser-entry.mjs'),
      `import { Account, PreKeyStore, SessionRecord, decodeBundle, encodeBundle, fromUtf8, utf8 } from '@parley/core';
import { MemoryStore, ParleyClient, connectRelay } from '@parley/client';

// The core handshake on its own (PQXDH, then one message).
window.__core = () => {
  const bob = Account.generate().createDevice(1);
  const prekeys = PreKeyStore.generate(bob, { oneTimePreKeys: 1, kemPreKeys: 1 });
  const alice = Account.generate().createDevice(1);
  const session = SessionRecord.initiate(alice, decodeBundle(encodeBundle(prekeys.bundle())));
  return fromUtf8(new SessionRecord().decrypt(session.encrypt(utf8('core in the page')), { device: bob, prekeys }).plaintext);
};

// The SDK through a relay on another origin.
window.__chat = async (relayUrl) => {
  try {
    const relay = connectRelay(relayUrl, { WebSocket, timeoutMs: 10000 });
    const alice = await ParleyClient.createAccount({ store: new MemoryStore(), relay });
    const bob = await ParleyClient.createAccount({ store: new MemoryStore(), relay });
    const received = new Promise((resolve) => bob.on('message', (m) => resolve(m.body.type === 'text' ? m.body.text : '?')));
    await alice.start();
    await bob.start();
    await alice.sendText(bob.accountId, 'hello across origins');
    const text = await received;
    await alice.close();
    await bob.close();
    return { text };
  } catch (e) {
    return { error: (e && e.code ? e.code + ': ' : '') + String(e && e.message) };
  }
};
window.__ready = true;
`,
    );
    const bundle = await bundleForBrowser(join(app, 'browser-entry.mjs'), { installedIn: app });
    expect(bundle.imports).toEqual([]);
    // Everything came from the installed packages' dist/, nothing from the repository.
    const parleyInputs = bundle.inputs.filter((p) => p.includes('@parley/'));
    expect(parleyInputs.length).toBeGreaterThan(0);
    expect(parleyInputs.every((p) => p.includes('node_modules/@parley/') && p.includes('/dist/'))).toBe(true);

    page = await serveStatic({
      '/': { type: 'text/html; charset=utf-8', body: modulePage('app.js') },
      '/app.js': { type: 'text/javascript', body: bundle.code },
    });
    const pageOrigin = new URL(page.url).origin;

    const bin = join(app, 'node_modules', '@parley', 'relay', 'dist', 'cli', 'bin.js');
    const withCors = await startRelay(['--data-dir', join(work, 'cors-relay')], { PARLEY_CORS_ORIGINS: pageOrigin }, bin);
    const withoutCors = await startRelay(['--data-dir', join(work, 'plain-relay')], {}, bin);
    expect(new URL(withCors.url).origin).not.toBe(pageOrigin);

    chromium = await launchFreshProfile();
    const tab = chromium.page;
    const pageErrors: string[] = [];
    tab.on('pageerror', (e) => pageErrors.push(`${e.name}: ${e.message}`));
    await tab.goto(pageOrigin);
    await tab.waitForFunction(() => (window as { __ready?: boolean }).__ready === true, undefined, { timeout: 30_000 });

    expect(await tab.evaluate(() => (window as unknown as { __core: () => string }).__core())).toBe('core in the page');
    type Outcome = { text?: string; error?: string };
    const chat = (url: string) => tab.evaluate((u) => (window as unknown as { __chat: (u: string) => Promise<Outcome> }).__chat(u), url);
    expect(await chat(withCors.url)).toEqual({ text: 'hello across origins' });
    const refused = await chat(withoutCors.url);
    expect(refused.error).toMatch(/RELAY_UNAVAILABLE/);
    expect(pageErrors).toEqual([]);
  });
});
