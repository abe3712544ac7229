// The addon is built with the hardening binding.gyp asks for, as the ELF files show it:
// full RELRO, BIND_NOW, a non-executable stack, and (x86-64, where -fcf-protection applies)
// every weft object compiled with CET (IBT + shadow stack) notes.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helm.js';

const build = join(repoRoot, 'addon', 'build', 'Release');
const addon = join(build, 'weft_native.node');
const objects = join(build, 'obj.target', 'weft_native', 'src');
const readelf = (...args: string[]) => spawnSync('readelf', args, { encoding: 'utf8' });
const skip = !existsSync(addon) ? 'the addon is not built (npm run build:addon)' : readelf('--version').status !== 0 ? 'readelf (binutils) is missing' : false;

t.test('the addon links with full RELRO, BIND_NOW and a non-executable stack', { skip }, async (t) => {
  const dyn = readelf('-dW', addon).stdout;
  t.match(dyn, /\(FLAGS\)\s+BIND_NOW|FLAGS_1\).*NOW/, 'BIND_NOW');
  const seg = readelf('-lW', addon).stdout;
  t.match(seg, /GNU_RELRO/, 'RELRO segment');
  t.match(seg, /GNU_STACK\s+(\S+\s+){5}RW\s/, 'stack is RW, not RWE');
});

t.test('every weft object carries the -fcf-protection notes (x86-64)', { skip: skip || (arch() !== 'x64' ? `-fcf-protection is x86 only (this is ${arch()})` : false) }, async (t) => {
  const files = readdirSync(objects).filter((f) => f.endsWith('.o'));
  t.ok(files.length >= 5, `${files.length} objects`);
  for (const f of files) t.match(readelf('-nW', join(objects, f)).stdout, /x86 feature: IBT, SHSTK/, f);
});
