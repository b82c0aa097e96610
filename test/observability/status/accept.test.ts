import { test } from 'tap'
import { prefersHtml } from '../../../lib/observability/status-html'

test('HTML only when the Accept header ranks text/html above application/json', async (t) => {
  const cases: Array<[string | undefined, boolean, string]> = [
    [undefined, false, 'no header'],
    ['', false, 'empty header'],
    ['*/*', false, 'curl'],
    ['application/json', false, 'a JSON client'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8', true, 'Chromium navigating'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', true, 'Firefox navigating'],
    ['application/json, text/html', false, 'a tie goes to JSON'],
    ['text/html;q=0.5, application/json;q=0.9', false, 'JSON ranked higher'],
    ['text/html;q=0.9, application/json;q=0.5', true, 'HTML ranked higher'],
    ['text/*', true, 'any text'],
    ['text/html;q=0, */*', false, 'HTML refused'],
    ['TEXT/HTML', true, 'case does not matter'],
    ['text/html;level=1;q=0.7, application/*;q=0.6', true, 'parameters before q'],
    ['text/html;q=abc', false, 'a malformed q counts as 0']
  ]
  for (const [accept, html, what] of cases) t.equal(prefersHtml(accept), html, what)
})
