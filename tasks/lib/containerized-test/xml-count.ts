// Counts passed, failed and skipped tests in JUnit, NUnit (2 and 3), VSTest (.trx) and xUnit (v1
// and v2) result files without an XML dependency: a small tokenizer that checks that tags balance
// (so a truncated or malformed file is reported, not silently miscounted) and a per-format rule for
// which element is one test and what its outcome is. Namespaces (e.g. the .trx namespace) are
// ignored; DOCTYPE, comments, CDATA and processing instructions are skipped. Entities are not
// expanded (attribute values we read are plain words such as `Passed`).

export type ResultsFormat = 'JUnit' | 'NUnit' | 'VSTest' | 'XUnit';
export const RESULTS_FORMATS: readonly ResultsFormat[] = ['JUnit', 'NUnit', 'VSTest', 'XUnit'];

export interface TestCounts {
  passed: number;
  failed: number;
  skipped: number;
}

export class MalformedXmlError extends Error {
  override name = 'MalformedXmlError';
}

interface Tag {
  kind: 'open' | 'close' | 'empty';
  /** Local name (namespace prefix dropped). */
  name: string;
  attrs: Record<string, string>;
}

const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*/;

/** The element tags of `text`, in order; throws MalformedXmlError when the document is not well formed. */
export function* xmlTags(text: string): Generator<Tag> {
  const stack: string[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let sawRoot = false;
  const lineAt = (pos: number) => text.slice(0, pos).split('\n').length;
  const fail = (message: string, pos: number): never => {
    throw new MalformedXmlError(`${message} (line ${lineAt(pos)})`);
  };
  for (;;) {
    const lt = text.indexOf('<', i);
    if (lt < 0) break;
    if (stack.length === 0 && sawRoot && text.slice(i, lt).trim()) fail('text after the root element', i);
    if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt + 4);
      if (end < 0) fail('unclosed comment', lt);
      i = end + 3;
      continue;
    }
    if (text.startsWith('<![CDATA[', lt)) {
      if (stack.length === 0) fail('CDATA outside the root element', lt);
      const end = text.indexOf(']]>', lt + 9);
      if (end < 0) fail('unclosed CDATA section', lt);
      i = end + 3;
      continue;
    }
    if (text.startsWith('<?', lt)) {
      const end = text.indexOf('?>', lt + 2);
      if (end < 0) fail('unclosed processing instruction', lt);
      i = end + 2;
      continue;
    }
    if (text.startsWith('<!', lt)) {
      // <!DOCTYPE …> possibly with an internal subset in [ ].
      let depth = 0;
      let j = lt + 2;
      for (; j < text.length; j++) {
        const c = text[j];
        if (c === '[') depth++;
        else if (c === ']') depth--;
        else if (c === '>' && depth <= 0) break;
      }
      if (j >= text.length) fail('unclosed declaration', lt);
      i = j + 1;
      continue;
    }
    const closing = text[lt + 1] === '/';
    let j = lt + (closing ? 2 : 1);
    const nameMatch = NAME.exec(text.slice(j, j + 256));
    if (!nameMatch) fail('a tag without a valid name', lt);
    const qname = nameMatch![0];
    j += qname.length;
    const local = qname.includes(':') ? qname.slice(qname.lastIndexOf(':') + 1) : qname;
    if (closing) {
      while (/\s/.test(text[j] ?? '')) j++;
      if (text[j] !== '>') fail(`malformed closing tag </${qname}`, lt);
      const open = stack.pop();
      if (open !== qname) fail(open ? `</${qname}> closes <${open}>` : `</${qname}> without an opening tag`, lt);
      i = j + 1;
      yield { kind: 'close', name: local, attrs: {} };
      continue;
    }
    if (stack.length === 0 && sawRoot) fail('a second root element', lt);
    const attrs: Record<string, string> = {};
    for (;;) {
      const ws = j;
      while (/\s/.test(text[j] ?? '')) j++;
      if (j >= text.length) fail(`unclosed tag <${qname}`, lt);
      if (text[j] === '>' || text.startsWith('/>', j)) break;
      if (j === ws) fail(`attributes of <${qname}> must be separated by spaces`, j);
      const attr = NAME.exec(text.slice(j, j + 256));
      if (!attr) fail(`a malformed attribute in <${qname}>`, j);
      j += attr![0].length;
      while (/\s/.test(text[j] ?? '')) j++;
      if (text[j] !== '=') fail(`attribute ${attr![0]} of <${qname}> has no value`, j);
      j++;
      while (/\s/.test(text[j] ?? '')) j++;
      const quote = text[j];
      if (quote !== '"' && quote !== "'") fail(`attribute ${attr![0]} of <${qname}> is not quoted`, j);
      const end = text.indexOf(quote, j + 1);
      if (end < 0) fail(`unclosed attribute value in <${qname}>`, j);
      const value = text.slice(j + 1, end);
      if (value.includes('<')) fail(`'<' in an attribute value of <${qname}>`, j);
      const attrName = attr![0].includes(':') ? attr![0].slice(attr![0].lastIndexOf(':') + 1) : attr![0];
      attrs[attrName] = value;
      j = end + 1;
    }
    sawRoot = true;
    if (text.startsWith('/>', j)) {
      i = j + 2;
      yield { kind: 'empty', name: local, attrs };
    } else {
      stack.push(qname);
      i = j + 1;
      yield { kind: 'open', name: local, attrs };
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]}> is never closed (is the file truncated?)`, text.length);
  if (!sawRoot) fail('no root element', 0);
}

type Outcome = keyof TestCounts;

/** Counts the tests of one result file. Throws MalformedXmlError when the XML is not well formed. */
export function countTests(xml: string, format: ResultsFormat): TestCounts {
  const counts: TestCounts = { passed: 0, failed: 0, skipped: 0 };
  const add = (o: Outcome) => void counts[o]++;
  if (format === 'JUnit') {
    // <testcase> is one test; a <failure> or <error> child fails it, a <skipped> child skips it.
    let depth = 0;
    let current: Outcome | undefined;
    let caseDepth = -1;
    for (const tag of xmlTags(xml)) {
      if (tag.kind === 'close') {
        depth--;
        if (depth === caseDepth && tag.name === 'testcase') {
          add(current ?? 'passed');
          current = undefined;
          caseDepth = -1;
        }
        continue;
      }
      if (tag.name === 'testcase' && caseDepth < 0) {
        if (tag.kind === 'empty') add('passed');
        else {
          caseDepth = depth;
          current = undefined;
        }
      } else if (caseDepth >= 0 && (tag.name === 'failure' || tag.name === 'error')) current = 'failed';
      else if (caseDepth >= 0 && tag.name === 'skipped' && current !== 'failed') current = 'skipped';
      if (tag.kind === 'open') depth++;
    }
    return counts;
  }
  const rule: Record<Exclude<ResultsFormat, 'JUnit'>, { element: string; outcome: (a: Record<string, string>) => Outcome }> = {
    NUnit: {
      element: 'test-case',
      outcome: (a) => {
        if (/^false$/i.test(a.executed ?? '')) return 'skipped';
        const r = (a.result ?? '').toLowerCase();
        if (['passed', 'success', 'warning'].includes(r)) return 'passed';
        if (['failed', 'failure', 'error', 'cancelled'].includes(r)) return 'failed';
        if (r === '' && a.success) return /^true$/i.test(a.success) ? 'passed' : 'failed';
        return 'skipped'; // Skipped, Ignored, Inconclusive, NotRunnable
      },
    },
    VSTest: {
      element: 'UnitTestResult',
      outcome: (a) => {
        const o = (a.outcome ?? '').toLowerCase();
        if (o === 'passed' || o === 'warning' || o === 'passedbutrunaborted') return 'passed';
        if (['failed', 'error', 'timeout', 'aborted'].includes(o)) return 'failed';
        return 'skipped'; // NotExecuted, Inconclusive, Pending, NotRunnable, Disconnected…
      },
    },
    XUnit: {
      element: 'test',
      outcome: (a) => {
        const r = (a.result ?? '').toLowerCase();
        if (r === 'pass') return 'passed';
        if (r === 'fail') return 'failed';
        return 'skipped'; // Skip, NotRun
      },
    },
  };
  const { element, outcome } = rule[format];
  for (const tag of xmlTags(xml)) if (tag.kind !== 'close' && tag.name === element) add(outcome(tag.attrs));
  return counts;
}
