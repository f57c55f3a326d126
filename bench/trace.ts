/**
 * `--trace FILE`: a CSV time series of the load phase, one row per generator bucket (100 ms):
 * packets sent and received by the generator, the largest relay latency and send lateness in the
 * bucket, and the CPU used by the daemon and the generator in it (from samples of
 * /proc/PID/task/TID/schedstat taken by the driver, interpolated at the bucket edges).
 */
import { writeFileSync } from 'node:fs';
import type { GeneratorResult } from './messages.ts';

/** One sample of cumulative CPU time (ns) at a wall-clock instant (ms since the epoch). */
export interface CpuSample {
  readonly epochMs: number;
  readonly daemonNs: number;
  readonly generatorNs: number;
}

function interpolate(
  samples: readonly CpuSample[],
  t: number,
  key: 'daemonNs' | 'generatorNs',
): number | null {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (first === undefined || last === undefined || t < first.epochMs || t > last.epochMs) {
    return null;
  }
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    if (a === undefined || b === undefined) break;
    if (t <= b.epochMs) {
      const span = b.epochMs - a.epochMs;
      return span <= 0 ? b[key] : a[key] + ((b[key] - a[key]) * (t - a.epochMs)) / span;
    }
  }
  return null;
}

export function writeTrace(
  file: string,
  result: GeneratorResult,
  samples: readonly CpuSample[],
): void {
  const tr = result.trace;
  const rows = [
    't_ms,phase,sent,received,max_latency_ms,max_send_late_ms,daemon_cpu_pct,generator_cpu_pct',
  ];
  let lastNonEmpty = 0;
  tr.sent.forEach((n, i) => {
    if (n > 0 || (tr.received[i] ?? 0) > 0) lastNonEmpty = i;
  });
  for (let i = 0; i <= lastNonEmpty; i++) {
    const t0 = tr.originEpochMs + i * tr.bucketMs;
    const t1 = t0 + tr.bucketMs;
    const pct = (key: 'daemonNs' | 'generatorNs'): string => {
      const a = interpolate(samples, t0, key);
      const b = interpolate(samples, t1, key);
      return a === null || b === null ? '' : ((100 * (b - a)) / (tr.bucketMs * 1e6)).toFixed(1);
    };
    rows.push(
      [
        String(i * tr.bucketMs),
        t0 < tr.warmupEndEpochMs ? 'warmup' : 'measured',
        String(tr.sent[i] ?? 0),
        String(tr.received[i] ?? 0),
        (tr.maxLatencyMs[i] ?? 0).toFixed(3),
        (tr.maxLateMs[i] ?? 0).toFixed(3),
        pct('daemonNs'),
        pct('generatorNs'),
      ].join(','),
    );
  }
  writeFileSync(file, `${rows.join('\n')}\n`);
}
