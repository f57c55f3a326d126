import { rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { tempDir, type WithTeardown } from '../../helpers/tmp.ts';
import {
  MAX_PROMPT_BYTES,
  PromptCache,
  type PromptFs,
  promptPath,
  PromptTooLargeError,
  resolvePrompt,
} from '../../../src/play/prompts.ts';

function dir(t: WithTeardown): string {
  return tempDir(t, 'prompts');
}

t.test('promptPath() appends the payload type', async (t) => {
  t.equal(promptPath('/var/lib/prompts/moh', 8), '/var/lib/prompts/moh.8');
  t.equal(promptPath('rel/x', 0), 'rel/x.0');
});

t.test(
  'promptCache.get() reads a file once and serves it from memory while it is unchanged',
  async (t) => {
    const d = dir(t);
    const file = path.join(d, 'a.8');
    writeFileSync(file, Buffer.alloc(160, 1));
    const cache = new PromptCache();
    const first = await cache.get(file);
    const second = await cache.get(file);
    t.equal(cache.reads, 1);
    t.equal(first, second, 'the same Buffer is shared');
    t.equal(cache.bytes, 160);
  },
);

t.test('promptCache.get() reads a changed file again (size, modification time)', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'a.8');
  writeFileSync(file, Buffer.alloc(160, 1));
  const cache = new PromptCache();
  await cache.get(file);
  writeFileSync(file, Buffer.alloc(240, 2));
  t.same(await cache.get(file), Buffer.alloc(240, 2));
  writeFileSync(file, Buffer.alloc(240, 3));
  utimesSync(file, new Date(), new Date(Date.now() + 10_000));
  t.same(await cache.get(file), Buffer.alloc(240, 3));
  t.equal(cache.reads, 3);
  t.equal(cache.bytes, 240);
});

t.test(
  'promptCache.get() answers undefined for missing files, directories and read errors',
  async (t) => {
    const d = dir(t);
    const cache = new PromptCache();
    t.equal(await cache.get(path.join(d, 'none.8')), undefined);
    t.equal(await cache.get(d), undefined);
    const file = path.join(d, 'gone.8');
    writeFileSync(file, Buffer.alloc(80));
    t.ok(await cache.get(file));
    rmSync(file);
    t.equal(await cache.get(file), undefined, 'a deleted prompt is forgotten');
    t.equal(cache.bytes, 0);
    const failing: PromptFs = {
      stat: async () => ({ mtimeMs: 1, size: 80, ino: 1, isFile: () => true }),
      readFile: async () => {
        throw new Error('EIO');
      },
    };
    t.equal(await new PromptCache({ fs: failing }).get('x.8'), undefined);
  },
);

t.test('promptCache.get() shares one read between concurrent callers', async (t) => {
  let reads = 0;
  const fs: PromptFs = {
    stat: async () => ({ mtimeMs: 1, size: 80, ino: 1, isFile: () => true }),
    readFile: async () => {
      reads += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return Buffer.alloc(80);
    },
  };
  const cache = new PromptCache({ fs });
  const [a, b] = await Promise.all([cache.get('x.8'), cache.get('x.8')]);
  t.equal(reads, 1);
  t.equal(a, b);
});

t.test('promptCache keeps at most maxBytes, dropping the least recently used prompt', async (t) => {
  const fs: PromptFs = {
    stat: async (p) => ({ mtimeMs: 1, size: 100, ino: p.length, isFile: () => true }),
    readFile: async () => Buffer.alloc(100),
  };
  const cache = new PromptCache({ fs, maxBytes: 250 });
  await cache.get('a.8');
  await cache.get('b.8');
  await cache.get('a.8'); // a is now the most recent
  await cache.get('c.8'); // b goes
  t.equal(cache.bytes, 200);
  t.equal(cache.reads, 3);
  await cache.get('a.8');
  t.equal(cache.reads, 3, 'a stayed');
  await cache.get('b.8');
  t.equal(cache.reads, 4, 'b was dropped');
});

t.test('resolvePrompt() takes the first playable NAME.PT in list order', async (t) => {
  const d = dir(t);
  const name = path.join(d, 'moh');
  writeFileSync(`${name}.8`, Buffer.alloc(800, 8));
  writeFileSync(`${name}.0`, Buffer.alloc(800, 0));
  writeFileSync(`${name}.96`, Buffer.alloc(800, 96));
  writeFileSync(`${name}.18`, Buffer.alloc(5, 18));
  const cache = new PromptCache();
  t.equal((await resolvePrompt(cache, name, [8, 0], -1))?.path, `${name}.8`);
  t.equal((await resolvePrompt(cache, name, [101, 0, 8], -1))?.path, `${name}.0`);
  t.equal(
    (await resolvePrompt(cache, name, [96, 8], -1))?.path,
    `${name}.8`,
    'a payload type the player cannot frame is skipped',
  );
  t.equal(
    (await resolvePrompt(cache, name, [18, 8], -1))?.path,
    `${name}.8`,
    'a file shorter than one packet is skipped',
  );
  t.equal(await resolvePrompt(cache, name, [3, 4, 9], -1), undefined);
  t.equal(await resolvePrompt(cache, name, [], -1), undefined);
  t.same((await resolvePrompt(cache, name, [0], 30))?.framing, {
    payloadType: 0,
    payloadBytes: 240,
    packetMs: 30,
    timestampStep: 240,
  });
});

t.test('promptCache never reads a file over maxFileBytes', async (t) => {
  let size = 1000;
  let reads = 0;
  const fs: PromptFs = {
    stat: async () => ({ mtimeMs: size, size, ino: 1, isFile: () => true }),
    readFile: async () => {
      reads += 1;
      return Buffer.alloc(size);
    },
  };
  const cache = new PromptCache({ fs, maxFileBytes: 800 });
  t.same(await cache.lookup('big.8'), { kind: 'too-large', size: 1000, limit: 800 });
  t.equal(await cache.get('big.8'), undefined);
  t.equal(reads, 0);
  size = 800;
  t.same(await cache.get('big.8'), Buffer.alloc(800), 'at the limit it plays');
  t.equal(cache.bytes, 800);
  size = 801;
  t.match(await cache.lookup('big.8'), { kind: 'too-large' });
  t.equal(cache.bytes, 0, 'the old contents are forgotten');
});

t.test(
  'resolvePrompt skips a file over the limit, and says so when nothing else plays',
  async (t) => {
    const fs: PromptFs = {
      stat: async (p) => {
        if (p.startsWith('none')) throw new Error('ENOENT');
        return {
          mtimeMs: 1,
          size: p.endsWith('.8') ? MAX_PROMPT_BYTES + 1 : 160,
          ino: 1,
          isFile: () => true,
        };
      },
      readFile: async () => Buffer.alloc(160),
    };
    const cache = new PromptCache({ fs });
    const played = await resolvePrompt(cache, 'moh', [8, 0], -1);
    t.equal(played?.path, 'moh.0', 'the next payload type plays');
    await t.rejects(resolvePrompt(cache, 'moh', [8], -1), PromptTooLargeError);
    const err = await resolvePrompt(cache, 'moh', [96, 8], -1).catch((e: unknown) => e);
    t.match(err, { path: 'moh.8', size: MAX_PROMPT_BYTES + 1, limit: MAX_PROMPT_BYTES });
    t.equal(await resolvePrompt(cache, 'none', [8, 0], -1), undefined, 'missing files: no error');
  },
);
