/**
 * The Grafana dashboard in packaging/ (docs/metrics.md) graphs only what the daemon exposes: every
 * metric a panel queries, and every label it selects or groups by, is in a real daemon's
 * `/metrics`.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { startDaemon } from '../helpers/daemon.ts';
import { portWindow } from '../helpers/udp.ts';

interface Panel {
  readonly title: string;
  readonly targets?: readonly { readonly expr: string }[];
}

const dashboard = JSON.parse(
  readFileSync(new URL('../../packaging/grafana-dashboard.json', import.meta.url), 'utf8'),
) as { readonly title: string; readonly panels: readonly Panel[] };

/** Labels Prometheus adds to every series, and the histogram bucket bound. */
const ADDED_LABELS = new Set(['instance', 'job']);
const METRIC = /\b(?:rtpproxy|process|nodejs)_[a-z0-9_]+\b/g;
const SELECTOR = /\b((?:rtpproxy|process|nodejs)_[a-z0-9_]+)\{([^}]*)\}/g;
const GROUPING = /\bby \(([^)]*)\)/g;

/** Metric families and their label names, from the text exposition (`_bucket` etc. as sampled). */
function exposed(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (m?.[1] === undefined) continue;
    const labels = out.get(m[1]) ?? new Set<string>();
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
      if (pair[1] !== undefined) labels.add(pair[1]);
    }
    out.set(m[1], labels);
  }
  return out;
}

t.test('every metric and label a panel queries is exposed', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(82), '--http', '127.0.0.1:0']);
  // One command, so that the histogram has samples.
  t.equal(await d.command('V'), '20040107\n');
  const res = await fetch(`http://127.0.0.1:${String(d.daemon.httpPort)}/metrics`, {
    signal: AbortSignal.timeout(5000),
  });
  const metrics = exposed(await res.text());
  t.ok(metrics.size > 40, 'the daemon exposes its metrics');

  t.ok(dashboard.panels.length >= 20, 'the dashboard has its panels');
  let queries = 0;
  for (const panel of dashboard.panels) {
    const targets = panel.targets ?? [];
    t.ok(targets.length > 0, `${panel.title}: has a query`);
    for (const { expr } of targets) {
      queries += 1;
      const names = [...expr.matchAll(METRIC)].map((m) => m[0]);
      t.ok(names.length > 0, `${panel.title}: ${expr} queries a metric`);
      t.match(expr, /instance=~"\$instance"/, `${panel.title}: follows the instance picker`);
      const labelsOf = new Set<string>();
      for (const name of names) {
        const labels = metrics.get(name);
        t.ok(labels !== undefined, `${panel.title}: ${name} is exposed`);
        for (const label of labels ?? []) labelsOf.add(label);
      }
      for (const [, name, matchers] of expr.matchAll(SELECTOR)) {
        for (const [, label] of (matchers ?? '').matchAll(
          /([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)/g,
        )) {
          if (label === undefined || ADDED_LABELS.has(label)) continue;
          t.ok(
            metrics.get(name ?? '')?.has(label),
            `${panel.title}: ${name ?? ''} has label ${label}`,
          );
        }
      }
      for (const [, list] of expr.matchAll(GROUPING)) {
        for (const label of (list ?? '').split(',').map((l) => l.trim())) {
          if (ADDED_LABELS.has(label)) continue;
          t.ok(
            labelsOf.has(label),
            `${panel.title}: grouped by ${label}, a label of ${names.join(', ')}`,
          );
        }
      }
    }
  }
  t.ok(queries >= 30, 'the panels hold their queries');
});
