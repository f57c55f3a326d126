/** Reading the daemon's Prometheus metrics (docs/metrics.md) in tests. */

/** The samples of a Prometheus text exposition: `name{labels}` to value. */
export function parseSamples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}
