// Run by cbor-reader.test.ts in a child process with a small heap: the strict reader, through readCbor
// (views) and decodeCbor (copies), over an 8 MiB input whose nested array heads each claim nearly all of
// it, refused after 40 bytes. Prints the error codes; a reader that allocated what the heads claim runs
// out of memory instead.
import { ParleyError, decodeCbor, readCbor } from '../../src/index.ts';

const size = 8 * 1024 * 1024;
const input = new Uint8Array(size);
const heads: number[] = [];
// Seven arrays of 0x007fff00 items each (each head's claim fits in what is left), one of one item, then a break byte.
for (let d = 0; d < 7; d++) heads.push(0x9a, 0x00, 0x7f, 0xff, 0x00);
heads.push(0x81, 0x00, 0xff);
input.set(heads);
for (let i = 0; i < 4; i++) {
  try {
    (i % 2 === 0 ? readCbor : decodeCbor)(input, 'claims', size);
    process.stdout.write('accepted\n');
  } catch (e) {
    process.stdout.write(`${e instanceof ParleyError ? e.code : String(e)}\n`);
  }
}
