// Selected by the `node` condition of package.json "imports": on Node the
// OpenSSL backend is the default. spec/01-conventions.md §4.
export { nodeBackend as defaultBackend } from './node.ts';
