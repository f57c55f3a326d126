/**
 * The on-disk format strategies (src/record/recording-format.ts): a file built from a format's
 * file header and record headers, each followed by its packet, reads back with the project's
 * readers (src/tools/recording-reader.ts, test/helpers/pcap-reader.ts).
 */
import t from 'tap';
import type { Endpoint, IpFamily } from '../../../src/record/record-types.ts';
import {
  ADHOC_FILE_FORMAT,
  PCAP_FILE_FORMAT,
  recordingFileFormat,
  type RecordingFileFormat,
} from '../../../src/record/recording-format.ts';
import { readRecording } from '../../../src/tools/recording-reader.ts';
import { readPcapFile } from '../../helpers/pcap-reader.ts';

/** One record to frame: the packet, its addresses, IP family and arrival time. */
interface Input {
  readonly packet: Buffer;
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly family: IpFamily;
  readonly wallMs: number;
}

/** A file as the writer lays it out: file header, then header + packet per record. */
function frame(format: RecordingFileFormat, inputs: readonly Input[]): Buffer {
  const chunks: Buffer[] = [];
  const fileHeader = format.fileHeader();
  if (fileHeader !== undefined) chunks.push(fileHeader);
  for (const { packet, from, to, family, wallMs } of inputs) {
    const header = format.recordHeader(packet, from, to, family, wallMs);
    if (header === undefined) throw new Error('record not representable');
    if (header.length !== format.recordHeaderSize(family)) throw new Error('size mismatch');
    chunks.push(header, packet);
  }
  return Buffer.concat(chunks);
}

/** A recognisable RTP-like packet of `size` bytes. */
function packet(seq: number, size: number): Buffer {
  const buf = Buffer.alloc(size, seq & 0xff);
  buf.writeUInt8(0x80, 0);
  buf.writeUInt16BE(seq, 2);
  return buf;
}

const ALICE = { address: '192.0.2.10', port: 46548 };
const RELAY = { address: '192.0.2.1', port: 35000 };
const ALICE6 = { address: '2001:db8::10', port: 5000 };
const RELAY6 = { address: '2001:db8::1', port: 35002 };
const T0 = 1_700_000_000_000;

const INPUTS: readonly Input[] = [
  { packet: packet(1, 172), from: ALICE, to: RELAY, family: 4, wallMs: T0 },
  { packet: packet(2, 33), from: ALICE6, to: RELAY6, family: 6, wallMs: T0 + 20.5 },
  { packet: packet(3, 12), from: ALICE, to: RELAY, family: 4, wallMs: T0 + 40 },
];

t.test('recordingFileFormat() picks the strategy of a format name', async (t) => {
  t.equal(recordingFileFormat('adhoc'), ADHOC_FILE_FORMAT);
  t.equal(recordingFileFormat('pcap'), PCAP_FILE_FORMAT);
  t.equal(ADHOC_FILE_FORMAT.format, 'adhoc');
  t.equal(PCAP_FILE_FORMAT.format, 'pcap');
});

t.test('ADHOC_FILE_FORMAT frames records the extract reader reads back', async (t) => {
  t.equal(ADHOC_FILE_FORMAT.fileHeader(), undefined, 'no file header');
  const result = readRecording(frame(ADHOC_FILE_FORMAT, INPUTS));
  if (!result.ok) {
    t.fail(result.error);
    return;
  }
  t.equal(result.format, 'adhoc');
  t.same(result.warnings, []);
  t.same(
    result.packets.map((p) => [p.source, p.destination, p.time]),
    [
      ['192.0.2.10:46548', '', T0 / 1000],
      ['[2001:db8:0:0:0:0:0:10]:5000', '', (T0 + 20.5) / 1000],
      ['192.0.2.10:46548', '', (T0 + 40) / 1000],
    ],
    'the sender only, and the arrival time in seconds',
  );
  t.same(
    result.packets.map((p) => p.payload),
    INPUTS.map((i) => i.packet),
  );
});

t.test('PCAP_FILE_FORMAT frames a pcap file both readers read back', async (t) => {
  const file = frame(PCAP_FILE_FORMAT, INPUTS);
  const { global, records } = readPcapFile(file);
  t.equal(global.magic, 0xa1b2c3d4);
  t.equal(global.linktype, 1, 'Ethernet');
  t.same(
    records.map((r) => [r.family, r.srcPort, r.dstPort, r.sec, r.usec]),
    [
      [4, ALICE.port, RELAY.port, T0 / 1000, 0],
      [6, ALICE6.port, RELAY6.port, T0 / 1000, 20_500],
      [4, ALICE.port, RELAY.port, T0 / 1000, 40_000],
    ],
  );
  t.ok(records.every((r) => r.udpChecksumOk));
  t.ok(records.filter((r) => r.family === 4).every((r) => r.ipChecksumOk));
  t.same(
    records.map((r) => r.payload),
    INPUTS.map((i) => i.packet),
  );
  const result = readRecording(file);
  if (!result.ok) {
    t.fail(result.error);
    return;
  }
  t.equal(result.format, 'pcap');
  t.same(
    result.packets.map((p) => [p.source, p.destination]),
    [
      ['192.0.2.10:46548', '192.0.2.1:35000'],
      ['[2001:db8:0:0:0:0:0:10]:5000', '[2001:db8:0:0:0:0:0:1]:35002'],
      ['192.0.2.10:46548', '192.0.2.1:35000'],
    ],
  );
});

t.test('PCAP_FILE_FORMAT advances the IPv4 id once per IPv4 record it encodes', async (t) => {
  const file = frame(PCAP_FILE_FORMAT, INPUTS);
  const ids = readPcapFile(file).records.map((r) => r.ipId);
  t.equal(ids[1], -1, 'IPv6 records carry no id');
  t.equal(ids[2], ((ids[0] ?? 0) + 1) & 0xffff, 'the IPv6 record in between does not count');
  // A record that cannot be encoded does not count either.
  const bad = PCAP_FILE_FORMAT.recordHeader(packet(4, 10), { address: 'x', port: 1 }, RELAY, 4, 0);
  t.equal(bad, undefined);
  const next = readPcapFile(frame(PCAP_FILE_FORMAT, INPUTS.slice(0, 1))).records[0]?.ipId;
  t.equal(next, ((ids[2] ?? 0) + 1) & 0xffff);
});

t.test('recordHeader() returns undefined for what a format cannot represent', async (t) => {
  const huge = Buffer.alloc(0x10000);
  for (const format of [ADHOC_FILE_FORMAT, PCAP_FILE_FORMAT]) {
    t.equal(format.recordHeader(huge, ALICE, RELAY, 4, T0), undefined, `${format.format} length`);
    const badPort = { address: ALICE.address, port: 70000 };
    t.equal(format.recordHeader(packet(1, 12), badPort, RELAY, 4, T0), undefined);
    t.equal(format.recordHeader(packet(1, 12), ALICE6, RELAY, 4, T0), undefined, 'family');
  }
});
