import t from 'tap';
import { splitCookie } from '../../../src/control/listener-udp.ts';

const cases: readonly (readonly [
  datagram: string,
  want: { cookie: string; line: string } | undefined,
])[] = [
  ['', undefined],
  [' \t\r\n', undefined],
  ['c1 V', { cookie: 'c1', line: 'V' }],
  ['c1', { cookie: 'c1', line: '' }],
  ['c1 \n', { cookie: 'c1', line: '' }],
  ['\n c1\t\tU a b\n', { cookie: 'c1', line: 'U a b\n' }],
  ['c1\nV', { cookie: 'c1', line: 'V' }],
  ['c\u0000x V\u0000', { cookie: 'c\u0000x', line: 'V\u0000' }],
];

for (const [datagram, want] of cases) {
  t.test(`splitCookie(${JSON.stringify(datagram)})`, async (t) => {
    t.strictSame(splitCookie(datagram), want);
  });
}
