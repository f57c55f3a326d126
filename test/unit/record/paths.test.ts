import path from 'node:path';
import t from 'tap';
import {
  isSafeRelativePath,
  legFileNames,
  namedFileNames,
  resolveInside,
  tagWithoutMediaNumber,
} from '../../../src/record/paths.ts';

const long = (n: number): string => 'x'.repeat(n);

t.test('legFileNames() follows docs/protocol.md 6.3', async (t) => {
  t.same(legFileNames('cid', 'from_tag_1', 1, false), {
    kind: 'separate',
    rtp: 'cid=from_tag_1.o.rtp',
    rtcp: 'cid=from_tag_1.o.rtcp',
  });
  t.same(legFileNames('cid', 'to_tag_1', 0, false), {
    kind: 'separate',
    rtp: 'cid=to_tag_1.a.rtp',
    rtcp: 'cid=to_tag_1.a.rtcp',
  });
  t.same(legFileNames('cid', 'abc;1', 1, false), {
    kind: 'separate',
    rtp: 'cid=abc.o.rtp',
    rtcp: 'cid=abc.o.rtcp',
  });
  t.same(legFileNames('cid', 'abc;1;2', 0, true), { kind: 'combined', file: 'cid=abc.pcap' });
  t.same(
    legFileNames('cid', ';1', 0, true),
    { kind: 'combined', file: 'cid=.pcap' },
    'empty tag stays as the reference',
  );
});

t.test('legFileNames() replaces "/" in call-ids and tags and refuses the rest', async (t) => {
  t.same(legFileNames('../x', 'a/b', 1, true), { kind: 'combined', file: '.._x=a_b.pcap' });
  t.same(legFileNames('a/b', 't', 0, false), {
    kind: 'separate',
    rtp: 'a_b=t.a.rtp',
    rtcp: 'a_b=t.a.rtcp',
  });
  t.same(legFileNames('/etc/passwd', 't', 1, true), {
    kind: 'combined',
    file: '_etc_passwd=t.pcap',
  });
  t.same(legFileNames('..', '..', 1, true), { kind: 'combined', file: '..=...pcap' });
  t.equal(legFileNames('', 't', 1, false), undefined, 'empty call-id');
  t.equal(legFileNames('a\0b', 't', 1, false), undefined, 'NUL in call-id');
  t.equal(legFileNames('a', 't\0', 1, false), undefined, 'NUL in tag');
  t.equal(legFileNames(long(300), 't', 1, false), undefined, '300-byte call-id');
  // 255 bytes is the limit of the whole component, suffix included: "=t.o.rtcp" is 9 bytes.
  t.ok(legFileNames(long(246), 't', 1, false));
  t.equal(legFileNames(long(247), 't', 1, false), undefined);
  t.equal(legFileNames('é'.repeat(124), 't', 1, false), undefined, 'bytes, not characters, count');
});

t.test('namedFileNames() follows docs/protocol.md 6.3 and keeps names inside', async (t) => {
  t.same(namedFileNames('rec1', false), { kind: 'separate', rtp: 'rec1.rtp', rtcp: 'rec1.rtcp' });
  t.same(namedFileNames('rec1', true), { kind: 'combined', file: 'rec1' });
  t.same(
    namedFileNames('a/b', false),
    { kind: 'separate', rtp: 'a/b.rtp', rtcp: 'a/b.rtcp' },
    'subdirectory kept',
  );
  const refused: readonly (readonly [string, string])[] = [
    ['', 'empty'],
    ['../x', 'parent'],
    ['a/../../x', 'parent in the middle'],
    ['..', 'dot-dot'],
    ['.', 'dot'],
    ['/etc/passwd', 'absolute'],
    ['a//b', 'empty component'],
    ['a/', 'trailing slash'],
    ['./a', 'dot component'],
    ['a\0b', 'NUL'],
    [long(300), '300-byte name'],
    [`ok/${long(300)}`, '300-byte component'],
  ];
  for (const [name, why] of refused) {
    t.equal(namedFileNames(name, true), undefined, `${why} (combined)`);
    t.equal(namedFileNames(name, false), undefined, `${why} (separate)`);
  }
  t.ok(namedFileNames(long(255), true), '255 bytes is allowed for a combined name');
  t.equal(namedFileNames(long(251), false), undefined, '251 + ".rtcp" is 256 bytes');
  t.ok(namedFileNames(long(250), false));
  t.ok(namedFileNames(`${long(255)}/${long(250)}`, false), 'limit is per component');
});

t.test('tagWithoutMediaNumber() cuts at the first ";"', async (t) => {
  t.equal(tagWithoutMediaNumber('abc;1'), 'abc');
  t.equal(tagWithoutMediaNumber('abc'), 'abc');
  t.equal(tagWithoutMediaNumber(';1'), '');
});

t.test('isSafeRelativePath() rejects escapes', async (t) => {
  t.ok(isSafeRelativePath('x'));
  t.ok(isSafeRelativePath('..x'));
  t.ok(isSafeRelativePath('x..'));
  t.notOk(isSafeRelativePath('/x'));
  t.notOk(isSafeRelativePath('x/..'));
});

t.test('resolveInside() stays strictly inside the directory', async (t) => {
  const dir = path.resolve('/var/rec');
  t.equal(resolveInside(dir, 'a.rtp'), path.join(dir, 'a.rtp'));
  t.equal(resolveInside(dir, 'sub/a.rtp'), path.join(dir, 'sub/a.rtp'));
  t.equal(resolveInside(dir, '..x'), path.join(dir, '..x'));
  t.equal(resolveInside(dir, '../x'), undefined);
  t.equal(resolveInside(dir, 'a/../../x'), undefined);
  t.equal(resolveInside(dir, '..'), undefined);
  t.equal(resolveInside(dir, '.'), undefined);
  t.equal(resolveInside(dir, ''), undefined);
  t.equal(resolveInside(dir, '/etc/passwd'), undefined);
  t.equal(resolveInside(dir, 'a\0'), undefined);
  t.equal(
    resolveInside('rel/dir', 'x'),
    path.resolve('rel/dir', 'x'),
    'relative dir resolved from cwd',
  );
});
