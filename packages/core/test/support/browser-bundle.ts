/**
 * Bundling for core's browser tests: an entry as the browser gets it from
 * esbuild (portable conditions, ESM), with every Node built-in left external
 * so that one slipping in shows up in the bundle's imports instead of as a
 * resolver error.
 */
import { builtinModules } from 'node:module';
import { build } from 'esbuild';

/** Every spelling of every Node built-in: `fs`, `node:fs`, `fs/promises`, `node:test`, ... */
export const NODE_BUILTINS: readonly string[] = [
  ...new Set(builtinModules.flatMap((m) => (m.startsWith('node:') ? [m] : [m, `node:${m}`]))),
];

export interface Bundle {
  readonly code: string;
  /** Source files that went into the bundle, relative to the working directory. */
  readonly inputs: readonly string[];
  /** Modules the bundle still imports at run time (externals). */
  readonly imports: readonly string[];
}

/**
 * Bundles `entry` as the browser would get it: portable conditions, ESM, no
 * Node built-ins resolved. Inside the repository @parley/* resolve to their
 * sources; with `installedIn` (a project folder with the packages installed)
 * they resolve as a stranger's bundler sees them: to their dist/.
 */
export async function bundleForBrowser(entry: string, options: { installedIn?: string } = {}): Promise<Bundle> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
    external: [...NODE_BUILTINS],
    // The repository's sources (package.json exports); published builds resolve to dist/.
    ...(options.installedIn ? { absWorkingDir: options.installedIn } : { conditions: ['parley:source'] }),
  });
  const [out] = result.outputFiles;
  const meta = Object.values(result.metafile.outputs)[0];
  if (!out || !meta) throw new Error('esbuild produced no output');
  return { code: out.text, inputs: Object.keys(result.metafile.inputs), imports: meta.imports.map((i) => i.path) };
}
