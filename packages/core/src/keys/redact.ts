/**
 * Objects that hold secrets keep them in private (#) fields and describe
 * themselves through these hooks, so that `String(x)`, `JSON.stringify(x)`
 * and `util.inspect(x)` (console.log) never print key bytes. A test checks
 * every secret-holding type. spec/07-security.md §12.
 */

// util.inspect's hook, reached through the global symbol registry so this
// file imports no Node built-in.
export const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

export function redacted(name: string, publicInfo: Record<string, unknown> = {}): string {
  const parts = Object.entries(publicInfo).map(([k, v]) => `${k}: ${String(v)}`);
  return `${name} { ${[...parts, '<secret redacted>'].join(', ')} }`;
}
