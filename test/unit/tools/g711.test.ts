import t from 'tap';
import {
  alawToLinear,
  decodeSamples,
  encodeSamples,
  linearToAlaw,
  linearToUlaw,
  ulawToLinear,
} from '../../../src/tools/g711.ts';

t.test('linearToUlaw()/linearToAlaw() match known G.711 code words', async (t) => {
  // Silence, full scale and a few points worked out by hand from the segment tables.
  t.same(
    [0, -1, 32767, -32768, 100, -100, 1000].map(linearToUlaw),
    [0xff, 0x7e, 0x80, 0x00, 0xf2, 0x72, 0xce],
  );
  t.same(
    [0, -1, 32767, -32768, 100, -100, 1000].map(linearToAlaw),
    [0xd5, 0x55, 0xaa, 0x2a, 0xd3, 0x53, 0xfa],
  );
  t.same([0xff, 0x7f, 0x80, 0x00].map(ulawToLinear), [0, 0, 32124, -32124]);
  t.same([0xd5, 0x55, 0xaa, 0x2a].map(alawToLinear), [8, -8, 32256, -32256]);
});

t.test('G.711 decode then encode gives every code word back', async (t) => {
  let ulawBad = 0;
  let alawBad = 0;
  for (let c = 0; c < 256; c++) {
    // 0x7f is mu-law's negative zero: it decodes to 0, which encodes as 0xff.
    if (c !== 0x7f && linearToUlaw(ulawToLinear(c)) !== c) ulawBad += 1;
    if (linearToAlaw(alawToLinear(c)) !== c) alawBad += 1;
  }
  t.equal(ulawBad, 0);
  t.equal(alawBad, 0);
});

t.test('G.711 round trip error stays within the quantization step', async (t) => {
  let worstU = 0;
  let worstA = 0;
  for (let x = -32768; x <= 32767; x += 7) {
    const u = ulawToLinear(linearToUlaw(x));
    const a = alawToLinear(linearToAlaw(x));
    // A step is at most 1/16 of the magnitude, plus the smallest step near zero (mu-law clips at 32124).
    const clipped = Math.max(-32124, Math.min(32124, x));
    worstU = Math.max(worstU, Math.abs(u - clipped) / (Math.abs(x) / 16 + 8));
    worstA = Math.max(worstA, Math.abs(a - x) / (Math.abs(x) / 16 + 16));
  }
  t.ok(worstU <= 1, `mu-law worst ${worstU.toFixed(3)}`);
  t.ok(worstA <= 1, `A-law worst ${worstA.toFixed(3)}`);
});

t.test('encodeSamples()/decodeSamples() map arrays', async (t) => {
  const samples = Int16Array.from([0, 1000, -1000, 32767]);
  const bytes = encodeSamples(samples, linearToAlaw);
  t.same([...bytes], [0xd5, 0xfa, 0x7a, 0xaa]);
  t.same([...decodeSamples(bytes, alawToLinear)], [8, 1008, -1008, 32256]);
});
