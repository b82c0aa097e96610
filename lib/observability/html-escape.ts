const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text safe in HTML (and inline SVG) content and in quoted attributes. */
export function escape (value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c])
}
