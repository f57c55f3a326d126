import t from 'tap';
import { computeCapacity, RESERVED_FILES } from '../../../src/cli/capacity.ts';

const base = { portMin: 35000, portMax: 64998, recordAll: false, pcap: false, noRtcpRecord: false };

t.test(
  'computeCapacity() of the default range: 15000 pairs, 7500 sessions, 4 files each',
  async (t) => {
    const c = computeCapacity(base, 1024);
    t.match(c, { portPairs: 15000, sessionsByPorts: 7500, filesPerSession: 4, fileLimit: 1024 });
    t.equal(c.sessionsByFiles, Math.floor((1024 - RESERVED_FILES) / 4));
    t.equal(c.filesNeeded, 7500 * 4 + RESERVED_FILES);
  },
);

t.test('computeCapacity() counts the recording files of -a', async (t) => {
  t.equal(
    computeCapacity({ ...base, recordAll: true }, undefined).filesPerSession,
    8,
    'rtp and rtcp per leg',
  );
  t.equal(
    computeCapacity({ ...base, recordAll: true, noRtcpRecord: true }, undefined).filesPerSession,
    6,
    '-R',
  );
  t.equal(
    computeCapacity({ ...base, recordAll: true, pcap: true }, undefined).filesPerSession,
    5,
    'one pcap',
  );
});

t.test('computeCapacity() without a known limit and with a tiny one', async (t) => {
  t.notOk('sessionsByFiles' in computeCapacity(base, undefined));
  t.equal(computeCapacity(base, 50).sessionsByFiles, 0);
  t.match(computeCapacity({ ...base, portMin: 40000, portMax: 40000 }, 1000), {
    portPairs: 1,
    sessionsByPorts: 0,
  });
});
