// A package's programs as single files, built after tsc. A plugin started on demand, a
// shim daemon or a diff worker would otherwise resolve and load a hundred-odd modules one
// by one at every start (~35 ms of a plugin's ~160 ms start here).
//
//   node ../../tools/bundle.mjs --outdir dist/bundle dist/bin.js [dist/worker/worker-main.js ...]
//   node ../../tools/bundle.mjs --outfile dist/shim.mjs dist/bin.js
//
// --outdir writes each entry as <outdir>/<its name>.js, side by side, so an entry that
// starts another by `new URL('./other.js', import.meta.url)` finds it there as in dist/.
import { chmodSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

// Native addons (and msgpackr, which lmdb loads itself): loaded from node_modules at run time.
const EXTERNAL = ['lmdb', 'msgpackr', 'koffi', '@napi-rs/xattr'];

const { values, positionals: entries } = parseArgs({ options: { outdir: { type: 'string' }, outfile: { type: 'string' } }, allowPositionals: true });
if (!entries.length || Boolean(values.outdir) === Boolean(values.outfile) || (values.outfile && entries.length > 1)) {
  console.error('usage: bundle.mjs (--outdir DIR ENTRY... | --outfile FILE ENTRY)');
  process.exit(2);
}

await build({
  entryPoints: entries,
  ...(values.outfile ? { outfile: values.outfile } : { outdir: values.outdir, entryNames: '[name]' }),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: EXTERNAL,
  // CommonJS dependencies bundled into an ES module still call require().
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
// Programs run directly (their #! line) stay executable.
const outputs = values.outfile ? [values.outfile] : entries.map((e) => join(values.outdir, basename(e)));
for (const file of outputs) chmodSync(file, 0o755);
