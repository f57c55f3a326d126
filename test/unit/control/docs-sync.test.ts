import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ECODES } from '../../../src/control/ecodes.ts';
import { RELAY_ERROR_CODES } from '../../../src/session/errors.ts';

const doc = readFileSync(path.join(import.meta.dirname, '../../../docs/protocol.md'), 'utf8');

t.test('docs/protocol.md documents every E-code and nothing else', async (t) => {
  const documented = [...doc.matchAll(/^\| E([0-9]+) \| ([A-Z_0-9]+) \|/gm)].map(
    (m) => `E${m[1] ?? ''} ${m[2] ?? ''}`,
  );
  const defined = Object.entries(ECODES).map(([name, { code }]) => `E${String(code)} ${name}`);
  t.same([...documented].sort(), [...defined].sort());
});

t.test('docs/protocol.md documents every RelayError code and nothing else', async (t) => {
  const documented = [...doc.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.same([...documented].sort(), Object.keys(RELAY_ERROR_CODES).sort());
});
