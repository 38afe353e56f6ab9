// The shim as one file (dist/shim.mjs), built after tsc: every cold start of a shim daemon
// would otherwise resolve and load some hundred modules one by one.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

const outfile = 'dist/shim.mjs';
await build({
  entryPoints: ['dist/bin.js'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // A native addon: loaded from node_modules at run time.
  external: ['koffi'],
  // CommonJS dependencies bundled into an ES module still call require().
  banner: { js: "import { createRequire as __shimRequire } from 'node:module'; const require = __shimRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
