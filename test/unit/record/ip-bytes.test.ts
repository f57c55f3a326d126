import t from 'tap';
import { addressBytes } from '../../../src/record/ip-bytes.ts';

const cases: readonly (readonly [text: string, family: 4 | 6, want: string | undefined])[] = [
  ['127.0.0.1', 4, '7f000001'],
  ['0.0.0.0', 4, '00000000'],
  ['255.255.255.255', 4, 'ffffffff'],
  ['::ffff:10.1.2.3', 4, '0a010203'],
  ['::FFFF:10.1.2.3', 4, '0a010203'],
  ['256.0.0.1', 4, undefined],
  ['1.2.3', 4, undefined],
  ['1.2.3.4.5', 4, undefined],
  ['1.2.3.', 4, undefined],
  ['1..3.4', 4, undefined],
  ['1.2.3.a', 4, undefined],
  ['1234.1.1.1', 4, undefined],
  ['', 4, undefined],
  ['::1', 4, undefined],
  ['::1', 6, '00000000000000000000000000000001'],
  ['::', 6, '00000000000000000000000000000000'],
  ['2001:db8::1', 6, '20010db8000000000000000000000001'],
  ['2001:DB8:0:0:1:0:0:1', 6, '20010db8000000000001000000000001'],
  ['fe80::1%eth0', 6, 'fe800000000000000000000000000001'],
  ['1::', 6, '00010000000000000000000000000000'],
  ['1:2:3:4:5:6:7::', 6, '00010002000300040005000600070000'],
  ['::ffff:192.0.2.1', 6, '00000000000000000000ffffc0000201'],
  ['192.0.2.1', 6, '00000000000000000000ffffc0000201'],
  ['1:2:3:4:5:6:1.2.3.4', 6, '00010002000300040005000601020304'],
  ['1:2:3:4:5:6:7:8:9', 6, undefined],
  ['1:2:3:4:5:6:7', 6, undefined],
  ['1::2::3', 6, undefined],
  [':1::', 6, undefined],
  ['1:2:3:4:5:6:7:8::', 6, undefined],
  ['12345::', 6, undefined],
  ['g::', 6, undefined],
  ['1.2.3.4::', 6, undefined],
  ['', 6, undefined],
];

for (const [text, family, want] of cases) {
  t.test(`addressBytes(${JSON.stringify(text)}, ${family})`, async (t) => {
    t.equal(addressBytes(text, family)?.toString('hex'), want);
  });
}
