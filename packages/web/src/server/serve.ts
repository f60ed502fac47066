/**
 * `npm run web`: a relay and the web chat on one origin (127.0.0.1).
 *
 * The page is served by the relay's own fastify instance, next to the
 * relay's routes, so the browser talks to the relay same-origin and needs
 * no CORS. (A page on another origin needs the relay's
 * `PARLEY_CORS_ORIGINS`.) The app is bundled once at start with esbuild for
 * the browser: `@parley/core` then resolves its portable (noble) backend,
 * and nothing Node-only can slip in (the bundle step fails on a Node import).
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { buildApp } from '@parley/relay';
import { build } from 'esbuild';
import type { FastifyInstance } from 'fastify';
import { PAGE_CSS, PAGE_HTML } from './page.ts';

const ENTRY = fileURLToPath(new URL('../app/main.ts', import.meta.url));

export interface WebServerOptions {
  /** Where the relay keeps its SQLite database and attachments. */
  readonly dataDir: string;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
}

export interface RunningWeb {
  readonly url: string;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** Bundles the browser app (ES2022 module, minified, with a source map inline only when asked). */
export async function bundleApp(options: { minify?: boolean } = {}): Promise<string> {
  const nodeBuiltins = [...new Set(builtinModules.flatMap((m) => (m.startsWith('node:') ? [m] : [m, `node:${m}`])))];
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: 'browser',
    // The repository's TypeScript sources (package.json exports); without it, the built dist/.
    conditions: ['parley:source'],
    format: 'esm',
    target: 'es2022',
    write: false,
    minify: options.minify ?? true,
    metafile: true,
    logLevel: 'silent',
    // Marked external so that one slipping in shows up below instead of as a resolver error.
    external: nodeBuiltins,
  });
  const [out] = result.outputFiles;
  const meta = Object.values(result.metafile.outputs)[0];
  if (!out || !meta) throw new Error('esbuild produced no output');
  const nodeImports = meta.imports.map((i) => i.path).filter((p) => nodeBuiltins.includes(p));
  if (nodeImports.length) throw new Error(`the web app bundle imports Node built-ins: ${nodeImports.join(', ')}`);
  return out.text;
}

export async function startWeb(options: WebServerOptions): Promise<RunningWeb> {
  const code = await bundleApp();
  const app = await buildApp({ config: { dataDir: options.dataDir, logLevel: 'warn' }, logger: false });
  const security = {
    // The page runs only its own script; media come from blob: URLs made from decrypted attachments.
    'content-security-policy':
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src blob:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
  // Public routes: the relay's auth hook skips routes marked auth 'none'.
  const open = { config: { auth: 'none' as const } };
  app.get('/', open, (_req, reply) => reply.headers(security).type('text/html; charset=utf-8').send(PAGE_HTML));
  app.get('/app.js', open, (_req, reply) => reply.headers(security).type('text/javascript; charset=utf-8').send(code));
  app.get('/app.css', open, (_req, reply) => reply.headers(security).type('text/css; charset=utf-8').send(PAGE_CSS));
  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const host = options.host ?? '127.0.0.1';
  return { url: `http://${host}:${port}/`, app, close: () => app.close() };
}
