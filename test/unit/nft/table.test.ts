import pino from 'pino';
import t from 'tap';
import { waitUntil } from '../../helpers/control.ts';
import { netAdminProblem, type NftResult } from '../../../src/nft/runner.ts';
import { instanceTableName, NftTable } from '../../../src/nft/table.ts';
import { dscpOf, TosMarks, tosDefinition } from '../../../src/nft/tos.ts';

/** A table over a recording fake of `nft -f -`; `fail` makes the next transactions fail. */
function fakeTable() {
  const scripts: string[] = [];
  const state = { fail: 0 };
  const table = new NftTable({
    name: 'rtpproxy_test',
    definition: tosDefinition(),
    maps: ['tos_addr', 'tos_port'],
    run: (script): Promise<NftResult> => {
      scripts.push(script);
      if (state.fail > 0) {
        state.fail -= 1;
        return Promise.resolve({ ok: false, message: 'Error: Could not process rule' });
      }
      return Promise.resolve({ ok: true });
    },
    logger: pino({ level: 'silent' }),
    now: () => 0,
  });
  return { table, scripts, state };
}

t.test('the table is created in one transaction that replaces a stale one', async (t) => {
  const { table, scripts } = fakeTable();
  t.same(await table.create(), { ok: true, variant: 0 });
  t.equal(scripts.length, 1);
  const lines = (scripts[0] ?? '').split('\n');
  t.equal(lines[0], 'add table inet rtpproxy_test');
  t.equal(lines[1], 'delete table inet rtpproxy_test');
  t.equal(lines[2], 'table inet rtpproxy_test {');
  t.match(scripts[0], /type filter hook output priority mangle/);
  t.match(scripts[0], /chain dscp_46 \{ ip dscp set 46; \}/);
  await table.close();
  t.equal(scripts[1], 'delete table inet rtpproxy_test\n', 'removed at close');
});

t.test('changes made together go out in one transaction; updates delete then add', async (t) => {
  const { table, scripts } = fakeTable();
  await table.create();
  const marks = new TosMarks(table);
  const leg1 = {};
  const leg2 = {};
  marks.mark(leg1, '10.0.0.5', 35000, 184);
  marks.mark(leg2, '0.0.0.0', 35002, 32);
  const gone = {};
  marks.mark(gone, '10.0.0.5', 35004, 184);
  marks.unmark(gone); // Never committed: costs nothing.
  await table.settled();
  t.equal(scripts.length, 2, 'one transaction for the burst');
  t.same((scripts[1] ?? '').trim().split('\n').sort(), [
    'add element inet rtpproxy_test tos_addr { 10.0.0.5 . 35000 : goto dscp_46 }',
    'add element inet rtpproxy_test tos_addr { 10.0.0.5 . 35001 : goto dscp_46 }',
    'add element inet rtpproxy_test tos_port { 35002 : goto dscp_8 }',
    'add element inet rtpproxy_test tos_port { 35003 : goto dscp_8 }',
  ]);
  marks.mark(leg1, '10.0.0.5', 35000, 96);
  marks.unmark(leg2);
  await table.settled();
  t.same((scripts[2] ?? '').trim().split('\n'), [
    'delete element inet rtpproxy_test tos_addr { 10.0.0.5 . 35000 }',
    'add element inet rtpproxy_test tos_addr { 10.0.0.5 . 35000 : goto dscp_24 }',
    'delete element inet rtpproxy_test tos_addr { 10.0.0.5 . 35001 }',
    'add element inet rtpproxy_test tos_addr { 10.0.0.5 . 35001 : goto dscp_24 }',
    'delete element inet rtpproxy_test tos_port { 35002 }',
    'delete element inet rtpproxy_test tos_port { 35003 }',
  ]);
  marks.mark(leg1, '10.0.0.5', 35000, 3); // DSCP 0: no element.
  marks.mark({}, '::1', 35010, 184); // IPv6: no element.
  await table.settled();
  t.equal(scripts.length, 4);
  t.same((scripts[3] ?? '').trim().split('\n'), [
    'delete element inet rtpproxy_test tos_addr { 10.0.0.5 . 35000 }',
    'delete element inet rtpproxy_test tos_addr { 10.0.0.5 . 35001 }',
  ]);
  await table.close();
});

t.test('a failed transaction is followed by one that rebuilds the maps', async (t) => {
  const { table, scripts, state } = fakeTable();
  await table.create();
  const marks = new TosMarks(table);
  state.fail = 1;
  marks.mark({}, '10.0.0.5', 35000, 184);
  await table.settled();
  t.equal(table.failedBatches, 1);
  // The retry comes about a second later: wait for its batch, then for it to settle.
  await waitUntil(() => scripts.length >= 3, 'the retry batch');
  await table.settled();
  t.equal(scripts.length, 3);
  t.same((scripts[2] ?? '').trim().split('\n'), [
    'flush map inet rtpproxy_test tos_addr',
    'add element inet rtpproxy_test tos_addr { 10.0.0.5 . 35000 : goto dscp_46 }',
    'add element inet rtpproxy_test tos_addr { 10.0.0.5 . 35001 : goto dscp_46 }',
    'flush map inet rtpproxy_test tos_port',
  ]);
  t.equal(table.committedBatches, 1);
  await table.close();
});

t.test('a table that could not be created takes no changes and is not removed', async (t) => {
  const { table, scripts, state } = fakeTable();
  state.fail = 1;
  t.same(await table.create(), {
    ok: false,
    message: 'Error: Could not process rule',
    variant: 1,
  });
  table.set('tos_port', '35000', 'goto dscp_46');
  await table.settled();
  await table.close();
  t.equal(scripts.length, 1);
});

t.test('names, DSCP and the capability check', async (t) => {
  t.equal(instanceTableName('udp:127.0.0.1:22222'), 'rtpproxy_udp_127_0_0_1_22222');
  t.equal(
    instanceTableName('unix:/run/rtpproxy/rtpproxy.sock'),
    'rtpproxy_unix_run_rtpproxy_rtpproxy_sock',
  );
  t.equal(instanceTableName('stdio:'), 'rtpproxy_stdio');
  t.ok(instanceTableName(`unix:/${'x'.repeat(200)}`).length <= 64);
  t.equal(dscpOf(184), 46);
  t.equal(dscpOf(185), 46, 'the ECN bits are not DSCP');
  t.equal(dscpOf(3), 0);
  const all = 'CapInh:\t0000000000000000\nCapAmb:\t0000000000000000\nCapBnd:\t000001ffffffffff\n';
  const noNetAdmin = 'CapAmb:\t0000000000000000\nCapBnd:\t000001ffffffefff\n';
  const ambient = 'CapAmb:\t0000000000001000\nCapBnd:\t000001ffffffffff\n';
  t.equal(netAdminProblem(all, 0), undefined, 'root with the full bounding set');
  t.match(netAdminProblem(noNetAdmin, 0), /bounding set/);
  t.match(netAdminProblem(all, 1000), /no CAP_NET_ADMIN/);
  t.equal(netAdminProblem(ambient, 1000), undefined, 'a user with the ambient capability');
});
