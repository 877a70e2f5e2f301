// Prints the minified and minified+gzipped size of the browser bundle
// (src/index.js with everything it imports), as measured for the README.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

const out = await build({
  entryPoints: ['src/index.js'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  write: false,
});
const code = out.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 });
console.log(`minified: ${code.length} bytes, minified+gzipped: ${gz.length} bytes`);
