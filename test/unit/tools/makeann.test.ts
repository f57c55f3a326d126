import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { tempDir, type WithTeardown } from '../../helpers/tmp.ts';
import { alawToLinear, decodeSamples, ulawToLinear } from '../../../src/tools/g711.ts';
import {
  limitSamples,
  parseMakeannArgs,
  runMakeann,
  templateFor,
  type MakeannIo,
} from '../../../src/tools/makeann.ts';
import { readWav, writeWav } from '../../../src/tools/wav.ts';

const BIN = path.join(import.meta.dirname, '../../../bin/rtpproxy-makeann.js');

function dir(t: WithTeardown): string {
  return tempDir(t, 'makeann');
}

/** 1 s of a 440 Hz + 1000 Hz mix at 8 kHz. */
function tone(samples = 8000): Int16Array {
  return Int16Array.from({ length: samples }, (_, i) =>
    Math.round(
      9000 * Math.sin((2 * Math.PI * 440 * i) / 8000) +
        4000 * Math.sin((2 * Math.PI * 1000 * i) / 8000),
    ),
  );
}

/** A canonical 44-byte-header WAV with the given format fields. */
function wavWith(
  fields: { tag?: number; channels?: number; rate?: number; bits?: number },
  data = Buffer.alloc(16),
): Buffer {
  const out = Buffer.alloc(44 + data.length);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(out.length - 8, 4);
  out.write('WAVEfmt ', 8, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(fields.tag ?? 1, 20);
  out.writeUInt16LE(fields.channels ?? 1, 22);
  out.writeUInt32LE(fields.rate ?? 8000, 24);
  out.writeUInt32LE(0, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(fields.bits ?? 16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(data.length, 40);
  data.copy(out, 44);
  return out;
}

/** In-memory files and captured output. */
function memoryIo(
  files: Map<string, Buffer>,
): MakeannIo & { outLines: string[]; errLines: string[] } {
  const outLines: string[] = [];
  const errLines: string[] = [];
  return {
    outLines,
    errLines,
    readFile: async (p) => {
      const f = files.get(p);
      if (f === undefined) throw new Error(`ENOENT: no such file, open '${p}'`);
      return f;
    },
    writeFile: async (p, data) => {
      files.set(p, data);
    },
    rename: async (from, to) => {
      const f = files.get(from);
      if (f === undefined) throw new Error('ENOENT');
      files.delete(from);
      files.set(to, f);
    },
    unlink: async (p) => {
      files.delete(p);
    },
    out: (line) => outLines.push(line),
    err: (line) => errLines.push(line),
  };
}

t.test(
  'makeann round trip: WAV -> PCMU and PCMA prompts -> decoded samples close to the input',
  async (t) => {
    const input = tone();
    const files = new Map([['in/hello.wav', writeWav(input)]]);
    const io = memoryIo(files);
    t.equal(await runMakeann(['in/hello.wav'], io), 0);
    t.same([...files.keys()].sort(), ['in/hello.0', 'in/hello.8', 'in/hello.wav']);
    t.same(io.outLines, ['in/hello.0: 8000 bytes, 1.000 s', 'in/hello.8: 8000 bytes, 1.000 s']);
    for (const [pt, decode] of [
      [0, ulawToLinear],
      [8, alawToLinear],
    ] as const) {
      const prompt = files.get(`in/hello.${String(pt)}`) ?? Buffer.alloc(0);
      t.equal(prompt.length, input.length, 'one byte per sample, no header');
      const out = decodeSamples(prompt, decode);
      let noise = 0;
      let signal = 0;
      let worst = 0;
      for (let i = 0; i < input.length; i++) {
        const x = input[i] ?? 0;
        const e = (out[i] ?? 0) - x;
        noise += e * e;
        signal += x * x;
        worst = Math.max(worst, Math.abs(e) / (Math.abs(x) / 16 + 16));
      }
      const snr = 10 * Math.log10(signal / noise);
      t.ok(snr > 30, `payload type ${String(pt)}: SNR ${snr.toFixed(1)} dB`);
      t.ok(worst <= 1, `payload type ${String(pt)}: every sample within one quantization step`);
    }
  },
);

t.test('makeann checks the input format and says what is wrong', async (t) => {
  const cases: readonly [string, Buffer, RegExp][] = [
    ['not a WAV', Buffer.from('hello world, not audio'), /not a WAV file/],
    ['stereo', wavWith({ channels: 2 }), /2 channels; mono \(1 channel\) is needed/],
    ['44.1 kHz', wavWith({ rate: 44100 }), /sample rate is 44100 Hz; 8000 Hz is needed/],
    ['float', wavWith({ tag: 3, bits: 32 }), /IEEE float; 16-bit integer PCM is needed/],
    ['8-bit', wavWith({ bits: 8 }), /8-bit; 16-bit integer PCM is needed/],
    ['mu-law', wavWith({ tag: 7, bits: 8 }), /mu-law/],
  ];
  for (const [name, bytes, message] of cases) {
    const io = memoryIo(new Map([['x.wav', bytes]]));
    t.equal(await runMakeann(['x.wav'], io), 1, name);
    t.match(io.errLines.join('\n'), message, name);
    t.match(io.errLines.join('\n'), /sox .* -r 8000 -c 1 -b 16/, `${name}: says how to convert`);
  }
  const both = readWav(wavWith({ channels: 2, rate: 16000 }));
  t.same(both.ok ? [] : both.errors.length, 2, 'all problems at once');
  const missing = memoryIo(new Map());
  t.equal(await runMakeann(['nope.wav'], missing), 1);
  t.match(missing.errLines[0], /nope\.wav: cannot read/);
  const empty = memoryIo(new Map([['e.wav', writeWav(new Int16Array(0))]]));
  t.equal(await runMakeann(['e.wav'], empty), 1);
  t.match(empty.errLines[0], /no audio samples/);
});

t.test(
  'readWav() reads extensible PCM, skips other chunks and copes with a streaming data size',
  async (t) => {
    const plain = writeWav(Int16Array.from([1, -2, 3]));
    // Insert a LIST chunk (odd size, padded) before fmt, and mark the data size unknown.
    const list = Buffer.concat([
      Buffer.from('LIST'),
      Buffer.from([3, 0, 0, 0]),
      Buffer.from('abc'),
      Buffer.alloc(1),
    ]);
    const streamed = Buffer.concat([plain.subarray(0, 12), list, plain.subarray(12)]);
    streamed.writeUInt32LE(0xffffffff, 12 + list.length + 28);
    const r = readWav(streamed);
    t.same(r.ok ? [...r.samples] : r.errors, [1, -2, 3]);
    const ext = Buffer.alloc(12 + 8 + 40 + 8 + 4);
    ext.write('RIFFxxxxWAVEfmt ', 0, 'latin1');
    ext.writeUInt32LE(40, 16);
    ext.writeUInt16LE(0xfffe, 20);
    ext.writeUInt16LE(1, 22);
    ext.writeUInt32LE(8000, 24);
    ext.writeUInt16LE(16, 34);
    ext.writeUInt16LE(1, 44); // sub-format: PCM
    ext.write('data', 60, 'latin1');
    ext.writeUInt32LE(4, 64);
    ext.writeInt16LE(-300, 68);
    ext.writeInt16LE(300, 70);
    const e = readWav(ext);
    t.same(e.ok ? [...e.samples] : e.errors, [-300, 300]);
  },
);

t.test('makeann options: -l, -L, -c, --raw, the template and usage errors', async (t) => {
  t.same([...limitSamples(Int16Array.from([1, 2, 3]), 2, false)], [1, 2]);
  t.same([...limitSamples(Int16Array.from([1, 2, 3]), 7, true)], [1, 2, 3, 1, 2, 3, 1]);
  t.same([...limitSamples(Int16Array.from([1, 2, 3]), 7, false)], [1, 2, 3]);
  t.equal(templateFor('/p/Hello.WAV'), '/p/Hello');
  t.equal(templateFor('/p/hello.raw'), '/p/hello.raw');
  t.match(parseMakeannArgs(['-L', 'x.wav']), /-L needs -l/);
  t.match(parseMakeannArgs(['-c', '18', 'x.wav']), /no encoder for payload type 18 \(G\.729\)/);
  t.match(parseMakeannArgs(['-c', 'pcmu', 'x.wav']), /payload type numbers/);
  t.match(parseMakeannArgs([]), /missing required argument/);
  t.match(parseMakeannArgs(['a', 'b', 'c']), /too many arguments/);
  const files = new Map([['in.raw', Buffer.from([0, 0, 0xe8, 0x03])]]); // 0, 1000
  const io = memoryIo(files);
  t.equal(await runMakeann(['--raw', '-c', '8', '-l', '5', '-L', 'in.raw', 'out/moh'], io), 0);
  t.same([...(files.get('out/moh.8') ?? [])], [0xd5, 0xfa, 0xd5, 0xfa, 0xd5]);
  t.equal(files.has('out/moh.0'), false);
  const usage = memoryIo(new Map());
  t.equal(await runMakeann(['-x'], usage), 2);
  t.match(usage.errLines.join('\n'), /usage: rtpproxy-makeann/);
});

t.test('bin/rtpproxy-makeann.js writes prompt files and exits with the right codes', async (t) => {
  const d = dir(t);
  const wav = path.join(d, 'welcome.wav');
  writeFileSync(wav, writeWav(tone(800)));
  const ok = spawnSync(process.execPath, [BIN, wav], { encoding: 'utf8' });
  t.equal(ok.status, 0, ok.stderr);
  t.equal(readFileSync(path.join(d, 'welcome.0')).length, 800);
  t.equal(readFileSync(path.join(d, 'welcome.8')).length, 800);
  t.match(ok.stdout, /welcome\.8: 800 bytes, 0\.100 s/);
  writeFileSync(wav, wavWith({ rate: 16000 }));
  const bad = spawnSync(process.execPath, [BIN, wav, path.join(d, 'other')], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /sample rate is 16000 Hz/);
  t.equal(existsSync(path.join(d, 'other.0')), false);
  const usage = spawnSync(process.execPath, [BIN], { encoding: 'utf8' });
  t.equal(usage.status, 2);
  const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /8000 Hz, mono, 16-bit PCM/);
});
