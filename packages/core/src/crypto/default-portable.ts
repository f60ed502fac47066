// Selected everywhere but Node (browsers, React Native, workers): the
// portable noble backend. Importing this file pulls in no Node built-in.
export { nobleBackend as defaultBackend } from './noble.ts';
