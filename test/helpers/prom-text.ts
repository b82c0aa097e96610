/** One sample of the Prometheus text format. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const LINE = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Parses the samples of a Prometheus text exposition (comments skipped). */
export function parseSamples (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = LINE.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_s, c: string) => c === 'n' ? '\n' : c)
    samples.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return samples
}

/** The samples of one metric whose labels include `labels`. */
export function samples (text: string, name: string, labels: Record<string, string> = {}): Sample[] {
  return parseSamples(text).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
}

/** The value of the one sample of `name` with exactly these labels (undefined when absent). */
export function sampleValue (text: string, name: string, labels: Record<string, string>): number | undefined {
  const found = parseSamples(text).filter((s) => s.name === name &&
    Object.keys(s.labels).length === Object.keys(labels).length &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`)
  return found[0]?.value
}

/** Values of a metric by one label, e.g. requests per target: { a: 3, b: 2 }. */
export function byLabel (text: string, name: string, label: string, filter: Record<string, string> = {}): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of samples(text, name, filter)) out[s.labels[label]] = (out[s.labels[label]] ?? 0) + s.value
  return out
}
