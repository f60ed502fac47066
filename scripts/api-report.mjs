/**
 * The public API of each published package, written down so that an
 * accidental export, or a changed signature, shows up in review (issue 18).
 *
 *   node scripts/api-report.mjs           write packages/<pkg>/api/<entry>.api.md
 *   node scripts/api-report.mjs --check   fail (exit 1) when a report differs from the code
 *
 * `npm run api:update` / `npm run api:check` (the check runs in `npm run lint`).
 *
 * Why not API Extractor: it reads built .d.ts files (a full build first) and
 * rolls them up with its own config per entry; this reads the sources through
 * the TypeScript compiler the repository already has, in one program for
 * every entry point, in a few seconds and without a build. What it lists, per
 * entry point of each package's `exports` map: every exported name, sorted,
 * with its kind and its resolved signature or type. Class members that are
 * private, protected or #private are not API and are left out; comments are
 * left out (they are not API either, and would make every doc edit a report
 * change). Output depends on the sources only: paths are relative to the
 * repository, names sorted, no dates.
 */
import { readFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Published packages (web is private: an app, not an API). */
const PACKAGES = ['core', 'relay', 'client'];
const FORMAT =
  ts.TypeFormatFlags.NoTruncation |
  ts.TypeFormatFlags.UseSingleQuotesForStringLiteralType |
  ts.TypeFormatFlags.WriteArrowStyleSignature |
  ts.TypeFormatFlags.UseAliasDefinedOutsideCurrentScope;

/** Entry points: `exports` keys with a source condition, e.g. '.' -> src/index.ts. */
function entries(pkg) {
  const dir = join(ROOT, 'packages', pkg);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return Object.entries(manifest.exports ?? {})
    .filter(([, target]) => typeof target === 'object' && target['parley:source'])
    .map(([key, target]) => ({
      pkg,
      name: `${manifest.name}${key === '.' ? '' : key.slice(1)}`,
      file: resolve(dir, target['parley:source']),
      out: join(dir, 'api', `${key === '.' ? 'index' : key.slice(2).replaceAll('/', '-')}.api.md`),
    }));
}

function program(files) {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  return ts.createProgram({ rootNames: files, options: { ...parsed.options, noEmit: true } });
}

/** Absolute paths in `import("…")` types become repository-relative (the same report on every machine). */
const portable = (text) => text.replaceAll(`${ROOT}/`, '');

const hidden = (decl) => {
  if (!decl) return false;
  if (decl.name && ts.isPrivateIdentifier(decl.name)) return true;
  const flags = ts.getCombinedModifierFlags(decl);
  return (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0;
};

function render(checker, exported, at) {
  const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
  const name = exported.name;
  const type = (t) => portable(checker.typeToString(t, at, FORMAT));
  const signature = (s) => portable(checker.signatureToString(s, at, FORMAT));
  const printer = ts.createPrinter({ removeComments: true });
  // The printer indents by four; the rest of the report (and the repository) by two.
  const print = (node) =>
    portable(printer.printNode(ts.EmitHint.Unspecified, node, node.getSourceFile())).replace(/^((?: {4})+)/gm, (m) =>
      ' '.repeat(m.length / 2),
    );
  const out = [];
  const f = symbol.flags;

  if (f & ts.SymbolFlags.Class) {
    const decl = symbol.declarations?.find(ts.isClassDeclaration);
    const heritage = decl?.heritageClauses?.map((h) => ` ${h.getText()}`).join('') ?? '';
    const params = decl?.typeParameters ? `<${decl.typeParameters.map((p) => p.getText()).join(', ')}>` : '';
    const abstract = decl && ts.getCombinedModifierFlags(decl) & ts.ModifierFlags.Abstract ? 'abstract ' : '';
    out.push(`${abstract}class ${name}${params}${heritage} {`);
    const members = (table, prefix) => {
      const lines = [];
      for (const m of [...(table?.values() ?? [])]) {
        const d = m.valueDeclaration ?? m.declarations?.[0];
        if (m.name === 'prototype' || m.name.startsWith('__#') || hidden(d)) continue;
        if (m.name === '__constructor') {
          const ctorType = checker.getTypeOfSymbol(symbol);
          const ctorHidden = m.declarations?.every(hidden);
          for (const s of ctorType.getConstructSignatures()) {
            const text = signature(s).replace(/ => .*$/s, '');
            lines.push(`  ${ctorHidden ? 'private ' : ''}constructor${text};`);
          }
          if (!ctorType.getConstructSignatures().length && ctorHidden) lines.push('  private constructor();');
          continue;
        }
        const t = checker.getTypeOfSymbolAtLocation(m, at);
        const readonly = d && ts.getCombinedModifierFlags(d) & ts.ModifierFlags.Readonly ? 'readonly ' : '';
        if (m.flags & ts.SymbolFlags.Method) {
          for (const s of t.getCallSignatures()) lines.push(`  ${prefix}${m.name}${signature(s).replace(/ => /, ': ')};`);
        } else if (m.flags & ts.SymbolFlags.GetAccessor && !(m.flags & ts.SymbolFlags.SetAccessor)) {
          lines.push(`  ${prefix}get ${m.name}(): ${type(t)};`);
        } else {
          lines.push(`  ${prefix}${readonly}${m.name}${m.flags & ts.SymbolFlags.Optional ? '?' : ''}: ${type(t)};`);
        }
      }
      return lines.sort();
    };
    out.push(...members(symbol.exports, 'static '), ...members(symbol.members, ''), '}');
  } else if (f & ts.SymbolFlags.Function) {
    for (const s of checker.getTypeOfSymbolAtLocation(symbol, at).getCallSignatures()) {
      out.push(`function ${name}${signature(s).replace(/ => /, ': ')};`);
    }
  } else if (f & ts.SymbolFlags.Variable) {
    const d = symbol.valueDeclaration;
    const kind = d && ts.isVariableDeclaration(d) && d.parent.flags & ts.NodeFlags.Const ? 'const' : 'let';
    out.push(`${kind} ${name}: ${type(checker.getTypeOfSymbolAtLocation(symbol, at))};`);
  } else if (f & ts.SymbolFlags.Enum) {
    for (const d of symbol.declarations ?? []) out.push(print(d));
  }
  // Types may share a name with a value (a const and its type): listed too.
  if (f & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) {
    for (const d of symbol.declarations ?? []) {
      if (ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d)) {
        const text = print(d).replace(/^export (declare )?/, '');
        // Renamed on export: the report shows the exported name.
        out.push(d.name.text === name ? text : `${text.replace(d.name.text, name)} // declared as ${d.name.text}`);
      }
    }
  }
  if (out.length === 0) out.push(`${name}: ${type(checker.getTypeOfSymbolAtLocation(symbol, at))};`);
  return out.join('\n');
}

function report(checker, entry, source) {
  const moduleSymbol = checker.getSymbolAtLocation(source);
  const exported = moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : [];
  const names = [...exported].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const blocks = names.map((e) => render(checker, e, source));
  return [
    `# API report: ${entry.name}`,
    '',
    `Generated by \`npm run api:update\` from \`${relative(ROOT, entry.file)}\` (${names.length} exports). Do not edit:`,
    'a change here is a change to the public API, to be read in review.',
    '',
    '```ts',
    blocks.join('\n\n'),
    '```',
    '',
  ].join('\n');
}

const check = process.argv.includes('--check');
const all = PACKAGES.flatMap(entries);
const prog = program(all.map((e) => e.file));
const checker = prog.getTypeChecker();
const stale = [];
for (const entry of all) {
  const source = prog.getSourceFile(entry.file);
  if (!source) throw new Error(`no source file ${entry.file}`);
  const text = report(checker, entry, source);
  const current = existsSync(entry.out) ? readFileSync(entry.out, 'utf8') : null;
  if (current === text) continue;
  if (check) stale.push(relative(ROOT, entry.out));
  else {
    mkdirSync(dirname(entry.out), { recursive: true });
    writeFileSync(entry.out, text);
    process.stdout.write(`wrote ${relative(ROOT, entry.out)}\n`);
  }
}
if (stale.length) {
  process.stderr.write(
    `The public API changed: ${stale.join(', ')} ${stale.length === 1 ? 'differs' : 'differ'} from the code.\n` +
      'If the change is intended, run `npm run api:update` and commit the reports with it.\n',
  );
  process.exit(1);
}
