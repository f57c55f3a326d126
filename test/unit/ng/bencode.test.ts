import t from 'tap';
import { bytesText, decodeBencode, encodeBencode, isDict } from '../../../src/ng/bencode.ts';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

t.test('a dictionary decodes into a Map whose strings stay bytes', async (t) => {
  const got = decodeBencode(bytes('d7:command4:ping5:flagsl3:onee1:ni-42ee'));
  if (!got.ok) throw new Error(got.error);
  t.ok(isDict(got.value));
  if (!isDict(got.value)) return;
  t.equal(bytesText(got.value.get('command')), 'ping');
  t.equal(got.value.get('n'), -42);
  const flags = got.value.get('flags');
  t.ok(Array.isArray(flags));
  t.equal(bytesText((flags as readonly Uint8Array[])[0]), 'one');
});

t.test('bytes above 0x7f survive a round trip', async (t) => {
  const got = decodeBencode(bytes('d3:sdp3:\xe9\xff\x00e'));
  if (!got.ok || !isDict(got.value)) throw new Error('no dict');
  const text = bytesText(got.value.get('sdp'));
  t.equal(text, '\xe9\xff\x00');
  t.strictSame(
    encodeBencode({ sdp: Buffer.from(text ?? '', 'latin1') }),
    bytes('d3:sdp3:\xe9\xff\x00e'),
  );
});

const bad: readonly (readonly [string, RegExp])[] = [
  ['', /empty/],
  ['d7:command4:pin', /delimiter/],
  ['d7:command4:pingexx', /trailing/],
  ['5:ab', /truncated/],
  ['i1x2e', /not a number/],
  ['x', /delimiter/],
  ['d3:abce', /delimiter/],
  [`${'l'.repeat(40)}${'e'.repeat(40)}`, /nested too deeply/],
];

for (const [input, match] of bad) {
  t.test(
    `decodeBencode(${JSON.stringify(input.slice(0, 20))}) is an error, not an exception`,
    async (t) => {
      const got = decodeBencode(bytes(input));
      t.equal(got.ok, false);
      if (!got.ok) t.match(got.error, match);
    },
  );
}

t.test('a __proto__ key cannot reach the result', async (t) => {
  const got = decodeBencode(bytes('d9:__proto__d7:command4:pinge1:ai1ee'));
  if (!got.ok || !isDict(got.value)) throw new Error('no dict');
  t.equal(got.value.get('command'), undefined);
  t.equal(got.value.get('a'), 1);
});

t.test('encoding sorts keys and writes strings as UTF-8', async (t) => {
  t.equal(
    encodeBencode({ result: 'ok', b: ['x', 2], a: { z: 'é' } }).toString('latin1'),
    'd1:ad1:z2:\xc3\xa9e1:bl1:xi2ee6:result2:oke',
  );
});
