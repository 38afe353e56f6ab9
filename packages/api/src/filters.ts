/**
 * containerd's filter language for List calls.
 *
 *   selectors := selector ("," selector)*
 *   selector  := fieldpath [op value]
 *   fieldpath := field ("." field)*
 *   op        := "==" | "!=" | "~="
 *
 * Several filter strings are OR-ed, the selectors of one string are AND-ed.
 *
 * Deliberate deviations from upstream. All but the last accept filters that
 * upstream rejects, so every filter upstream accepts means the same here:
 * - `/` and `|` delimited strings are accepted wherever a quoted string is, not
 *   only as `~=` values (the documented syntax allows them for label keys:
 *   `labels.|containerd.io/uncompressed|`).
 * - An unquoted value may start with `.` (upstream's scanner rejects `name==.x`).
 * - Whitespace may follow a value (`name==a , b`); upstream only skips it
 *   before tokens it scans, not before `,` or the end.
 * - A `~=` value that does not compile fails the parse with InvalidArgument;
 *   upstream parses it and then never matches.
 */
import { InvalidArgumentError } from './errors.js';

export type Operator = '==' | '!=' | '~=';

/**
 * Looks a field up on the object being filtered. `undefined` means the field
 * is absent, which is distinct from present-but-empty for presence tests.
 */
export type FieldAdaptor = (fieldpath: string[]) => string | undefined;

export interface Selector {
  readonly fieldpath: readonly string[];
  /** Absent for a presence test (`labels.foo`). */
  readonly operator?: Operator;
  readonly value?: string;
  /** Compiled `value` of a `~=` selector. */
  readonly regexp?: RegExp;
}

export interface Filter {
  /** OR of AND-ed selectors. An empty conjunction matches everything. */
  readonly alternatives: readonly (readonly Selector[])[];
  /** True when the filter matches every object (lets callers skip adaptor work). */
  readonly always: boolean;
  match(adaptor: FieldAdaptor): boolean;
}

/** Parse the `filters` of a List request: strings are OR-ed; none (or an empty one) matches all. */
export function parseFilters(filters: readonly string[] | null | undefined): Filter {
  const list = filters ?? [];
  if (list.length === 0) return ALWAYS;
  const alternatives: Selector[][] = [];
  for (const text of list) alternatives.push(parseConjunction(text));
  return makeFilter(alternatives);
}

/** Parse one filter string (its selectors are AND-ed). */
export function parseFilter(text: string): Filter {
  return makeFilter([parseConjunction(text)]);
}

/** Parse `filters` and test a single object; for one-off checks. */
export function filterMatches(filters: readonly string[] | null | undefined, adaptor: FieldAdaptor): boolean {
  return parseFilters(filters).match(adaptor);
}

function makeFilter(alternatives: Selector[][]): Filter {
  const always = alternatives.some((conj) => conj.length === 0);
  return {
    alternatives,
    always,
    match: always
      ? () => true
      : (adaptor) => alternatives.some((conj) => conj.every((sel) => matchSelector(sel, adaptor))),
  };
}

const ALWAYS: Filter = makeFilter([[]]);

function matchSelector(sel: Selector, adaptor: FieldAdaptor): boolean {
  const value = adaptor(sel.fieldpath as string[]);
  switch (sel.operator) {
    case undefined:
      return value !== undefined;
    case '==':
      return value !== undefined && value === sel.value;
    // containerd compares an absent field as the empty string for `!=` and
    // `~=`: `labels.x!=y` selects objects without the label. Kept for
    // compatibility, so the same filter selects the same objects on both.
    case '!=':
      return (value ?? '') !== sel.value;
    case '~=':
      return sel.regexp!.test(value ?? '');
  }
}

// ---------------------------------------------------------------------------
// Adaptors

export type FieldValue = string | number | bigint | boolean | null | undefined;
export type StringMap = Readonly<Record<string, string>> | ReadonlyMap<string, string>;

/**
 * Build an adaptor from scalar fields keyed by their dotted path
 * (`{ name, 'target.digest': digest }`) and label-like maps keyed by their
 * field name (`{ labels, annotations }`).
 *
 * Map lookups join the rest of the path with `.`, so `labels.a.b` reads key
 * `a.b`. As in containerd, an empty scalar counts as absent while a map entry
 * with an empty value is present.
 */
export function fieldsAdaptor(
  fields: Readonly<Record<string, FieldValue>>,
  maps: Readonly<Record<string, StringMap | null | undefined>> = {},
): FieldAdaptor {
  return (fieldpath) => {
    if (fieldpath.length === 0) return undefined;
    const [head, ...rest] = fieldpath;
    if (Object.hasOwn(maps, head!)) {
      const map = maps[head!];
      if (!map || rest.length === 0) return undefined;
      return lookup(map, rest.join('.'));
    }
    const key = fieldpath.join('.');
    if (!Object.hasOwn(fields, key)) return undefined;
    const value = fields[key];
    if (value === undefined || value === null || value === '') return undefined;
    return String(value);
  };
}

/** Same as {@link fieldsAdaptor}, under the name some callers look for. */
export const adaptorFrom = fieldsAdaptor;

function lookup(map: StringMap, key: string): string | undefined {
  if (map instanceof Map) return map.get(key);
  const record = map as Readonly<Record<string, string>>;
  // hasOwn keeps `__proto__`/`constructor` from resolving to Object.prototype.
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

// ---------------------------------------------------------------------------
// Scanner

type Token =
  | { kind: 'field' | 'value'; pos: number; end: number; text: string }
  | { kind: 'quoted'; pos: number; end: number; text: string }
  | { kind: 'op'; pos: number; end: number; text: string }
  | { kind: 'dot' | 'comma' | 'eof'; pos: number; end: number }
  | { kind: 'illegal'; pos: number; end: number; text: string };

/** `field` mode reads field paths and operators, `value` mode reads after an operator. */
type Mode = 'field' | 'value';

const isSpace = (c: string) => /\s/u.test(c);
const isFieldChar = (c: string) => /[A-Za-z0-9_]/.test(c);
const isQuote = (c: string) => c === '"' || c === '/' || c === '|';
const isOpChar = (c: string) => c === '=' || c === '!' || c === '~';

class Scanner {
  pos = 0;
  constructor(readonly input: string) {}

  fail(pos: number, message: string): never {
    throw new InvalidArgumentError(`invalid filter ${goQuote(this.input)} at column ${pos + 1}: ${message}`);
  }

  peek(mode: Mode): Token {
    const saved = this.pos;
    try {
      return this.next(mode);
    } finally {
      this.pos = saved;
    }
  }

  next(mode: Mode): Token {
    const s = this.input;
    while (this.pos < s.length && isSpace(s[this.pos]!)) this.pos++;
    const pos = this.pos;
    if (pos >= s.length) return { kind: 'eof', pos, end: pos };
    const c = s[pos]!;
    if (isQuote(c)) return this.quoted();
    if (c === ',') return this.single('comma');
    if (mode === 'value') {
      let end = pos;
      while (end < s.length && s[end] !== ',' && !isSpace(s[end]!)) end++;
      this.pos = end;
      return { kind: 'value', pos, end, text: s.slice(pos, end) };
    }
    if (c === '.') return this.single('dot');
    if (isOpChar(c)) {
      // Read the whole run so `===` is reported as a bad operator instead of
      // silently becoming `==` with value `=...`.
      let end = pos;
      while (end < s.length && isOpChar(s[end]!)) end++;
      this.pos = end;
      const text = s.slice(pos, end);
      return text === '==' || text === '!=' || text === '~='
        ? { kind: 'op', pos, end, text }
        : { kind: 'illegal', pos, end, text };
    }
    if (isFieldChar(c)) {
      let end = pos;
      while (end < s.length && isFieldChar(s[end]!)) end++;
      this.pos = end;
      return { kind: 'field', pos, end, text: s.slice(pos, end) };
    }
    const ch = String.fromCodePoint(s.codePointAt(pos)!);
    this.pos = pos + ch.length;
    return { kind: 'illegal', pos, end: this.pos, text: ch };
  }

  private single(kind: 'comma' | 'dot'): Token {
    const pos = this.pos++;
    return { kind, pos, end: this.pos };
  }

  /** A Go-style string literal, with `/` and `|` accepted as delimiters besides `"`. */
  private quoted(): Token {
    const s = this.input;
    const start = this.pos;
    const delim = s[start]!;
    let out = '';
    // \x and octal escapes produce bytes, which only form text together.
    let bytes: number[] = [];
    const flush = () => {
      if (bytes.length) out += utf8Decoder.decode(Uint8Array.from(bytes));
      bytes = [];
    };
    let i = start + 1;
    for (;;) {
      if (i >= s.length || s[i] === '\n') this.fail(start, `unterminated quoted string (missing closing ${delim})`);
      const c = s[i]!;
      if (c === delim) break;
      if (c !== '\\') {
        flush();
        const ch = String.fromCodePoint(s.codePointAt(i)!);
        out += ch;
        i += ch.length;
        continue;
      }
      const esc = s[i + 1];
      const bad = (what = 'invalid escape sequence'): never =>
        this.fail(i, `${what} ${goQuote(s.slice(i, Math.min(s.length, i + 2)))} in quoted string`);
      if (esc === undefined) bad();
      const simple = SIMPLE_ESCAPES[esc!];
      if (simple !== undefined || esc === delim) {
        flush();
        out += simple ?? delim;
        i += 2;
        continue;
      }
      if (esc === 'x' || (esc! >= '0' && esc! <= '7')) {
        const octal = esc !== 'x';
        const digits = octal ? s.slice(i + 1, i + 4) : s.slice(i + 2, i + 4);
        const valid = octal ? /^[0-7]{3}$/.test(digits) : /^[0-9A-Fa-f]{2}$/.test(digits);
        const value = parseInt(digits, octal ? 8 : 16);
        if (!valid || value > 0xff) bad(octal ? 'invalid octal escape' : 'invalid hex escape');
        bytes.push(value);
        i += 4;
        continue;
      }
      if (esc === 'u' || esc === 'U') {
        const width = esc === 'u' ? 4 : 8;
        const digits = s.slice(i + 2, i + 2 + width);
        const value = parseInt(digits, 16);
        const valid = new RegExp(`^[0-9A-Fa-f]{${width}}$`).test(digits);
        if (!valid || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) bad('invalid unicode escape');
        flush();
        out += String.fromCodePoint(value);
        i += 2 + width;
        continue;
      }
      bad();
    }
    flush();
    this.pos = i + 1;
    return { kind: 'quoted', pos: start, end: this.pos, text: out };
  }
}

const utf8Decoder = new TextDecoder('utf-8');

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
};

// ---------------------------------------------------------------------------
// Parser

function describe(tok: Token): string {
  switch (tok.kind) {
    case 'eof':
      return 'end of filter';
    case 'comma':
      return '","';
    case 'dot':
      return '"."';
    case 'quoted':
      return 'a quoted string';
    default:
      return goQuote(tok.text);
  }
}

function parseConjunction(text: string): Selector[] {
  // Only the truly empty string matches all, as upstream: "   " is an error.
  if (text === '') return [];
  const sc = new Scanner(text);
  const expected = (tok: Token, what: string): never => sc.fail(tok.pos, `expected ${what}, found ${describe(tok)}`);

  const field = (): string => {
    const tok = sc.next('field');
    if (tok.kind === 'field' || tok.kind === 'quoted') return tok.text;
    return expected(tok, 'a field name or quoted string');
  };

  const selector = (): Selector => {
    const fieldpath = [field()];
    for (;;) {
      const tok = sc.peek('field');
      if (tok.kind !== 'dot') break;
      sc.next('field');
      fieldpath.push(field());
    }
    Object.freeze(fieldpath);
    const tok = sc.next('field');
    if (tok.kind === 'eof' || tok.kind === 'comma') {
      sc.pos = tok.pos;
      return { fieldpath };
    }
    if (tok.kind === 'illegal' && isOpChar(tok.text[0]!)) {
      sc.fail(tok.pos, `unsupported operator ${goQuote(tok.text)} (expected "==", "!=" or "~=")`);
    }
    if (tok.kind !== 'op') return expected(tok, '".", an operator ("==", "!=" or "~="), "," or end of filter');
    const operator = tok.text as Operator;
    const valueTok = sc.next('value');
    if (valueTok.kind !== 'value' && valueTok.kind !== 'quoted') {
      return expected(valueTok, `a value or quoted string after ${goQuote(operator)}`);
    }
    const value = valueTok.text;
    if (operator !== '~=') return { fieldpath, operator, value };
    let regexp: RegExp;
    try {
      regexp = compileRegexp(value);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      return sc.fail(valueTok.pos, reason);
    }
    return { fieldpath, operator, value, regexp };
  };

  const selectors = [selector()];
  for (;;) {
    const tok = sc.next('field');
    if (tok.kind === 'eof') break;
    if (tok.kind !== 'comma') expected(tok, '"," or end of filter');
    selectors.push(selector());
  }
  return selectors;
}

// ---------------------------------------------------------------------------
// Regular expressions

/**
 * Compile an RE2 (Go regexp) pattern to a JS RegExp with the same meaning for
 * the syntax both share, translating what differs (leading `(?flags)`,
 * `(?P<name>`, POSIX classes, `\A`, `\z`, `\Q..\E`, `\x{..}`, literal `{`,
 * ASCII-only `\s`, `.` excluding only `\n`) and rejecting what RE2 lacks
 * (backreferences, lookaround) so a filter cannot mean something upstream
 * would refuse. Flags inside the expression (`a(?i)b`, `(?i:..)`) and `(?U)`
 * have no JS equivalent and are rejected.
 * Matching is unanchored, as Go's MatchString.
 */
export function compileRegexp(pattern: string): RegExp {
  const fail = (reason: string): never => {
    throw new InvalidArgumentError(`invalid regular expression ${goQuote(pattern)}: ${reason}`);
  };
  let flags = 'u';
  let i = 0;
  for (let m: RegExpExecArray | null; (m = /^\(\?([A-Za-z]*)(?:-([A-Za-z]*))?\)/.exec(pattern.slice(i))); ) {
    for (const f of m[1]! + (m[2] ?? '')) {
      if (f === 'U') fail('the ungreedy flag (?U) is not supported');
      if (f !== 'i' && f !== 'm' && f !== 's') fail(`unknown flag ${goQuote(f)}`);
    }
    // Flags cleared with `-` are off by default, so only the set ones matter.
    for (const f of m[1]!) if (!flags.includes(f)) flags += f;
    i += m[0].length;
  }
  const dotAll = flags.includes('s');
  const n = pattern.length;
  let out = '';

  const literal = (ch: string, inClass: boolean): string => {
    if ('^$\\.*+?()[]{}|/'.includes(ch)) return `\\${ch}`;
    if (ch === '-' && inClass) return '\\-';
    return ch;
  };
  const codePoint = (cp: number): string => {
    if (cp > 0x10ffff) fail('escape sequence out of range');
    return `\\u{${cp.toString(16)}}`;
  };

  /** Translate the escape at `at` (a backslash); returns [js, next index]. */
  const escape = (at: number, inClass: boolean): [string, number] => {
    const c = pattern[at + 1];
    if (c === undefined) return fail('trailing backslash at end of expression');
    if (c >= '0' && c <= '9') {
      const m = /^[0-7]{1,3}/.exec(pattern.slice(at + 1));
      // RE2 reads a lone \1-\9 as a backreference, which it does not support.
      if (!m || (c !== '0' && m[0].length === 1)) return fail(`backreferences are not supported: ${goQuote(`\\${c}`)}`);
      return [codePoint(parseInt(m[0], 8)), at + 1 + m[0].length];
    }
    switch (c) {
      case 'a':
        return ['\\x07', at + 2];
      case 'f':
      case 'n':
      case 'r':
      case 't':
      case 'v':
      case 'd':
      case 'D':
      case 'w':
      case 'W':
        return [`\\${c}`, at + 2];
      // RE2's \s is ASCII-only and excludes \v; JS's adds \v and Unicode spaces.
      case 's':
        return [inClass ? classBody(PERL_SPACE) : `[${classBody(PERL_SPACE)}]`, at + 2];
      case 'S':
        return [inClass ? classBody(complement(PERL_SPACE)) : `[^${classBody(PERL_SPACE)}]`, at + 2];
      case 'b':
      case 'B':
      case 'A':
      case 'z':
        if (inClass) return fail(`invalid escape ${goQuote(`\\${c}`)} in character class`);
        if (c === 'A') return ['(?<![\\s\\S])', at + 2];
        if (c === 'z') return ['(?![\\s\\S])', at + 2];
        return [`\\${c}`, at + 2];
      case 'x': {
        const m = /^\{([0-9A-Fa-f]{1,8})\}|^[0-9A-Fa-f]{2}/.exec(pattern.slice(at + 2));
        if (!m) return fail(`invalid hex escape at offset ${at}`);
        return [codePoint(parseInt(m[1] ?? m[0], 16)), at + 2 + m[0].length];
      }
      case 'p':
      case 'P': {
        const m = /^\{(\^?)([A-Za-z_]+)\}|^[A-Za-z]/.exec(pattern.slice(at + 2));
        if (!m) return fail(`invalid character class range at offset ${at}`);
        const name = m[2] ?? m[0];
        const negated = (c === 'P') !== (m[1] === '^');
        // RE2 names scripts bare (\p{Greek}); JS wants Script=Greek.
        const prop = UNICODE_CATEGORIES.has(name) || name === 'Any' ? name : `Script=${name}`;
        return [`\\${negated ? 'P' : 'p'}{${prop}}`, at + 2 + m[0].length];
      }
      case 'Q': {
        if (inClass) return fail('\\Q...\\E is not supported in a character class');
        const end = pattern.indexOf('\\E', at + 2);
        const text = pattern.slice(at + 2, end < 0 ? n : end);
        return [[...text].map((ch) => literal(ch, false)).join(''), end < 0 ? n : end + 2];
      }
    }
    if (c.charCodeAt(0) < 0x80 && !/[A-Za-z0-9]/.test(c)) return [literal(c, inClass), at + 2];
    return fail(`invalid escape sequence ${goQuote(`\\${c}`)}`);
  };

  const charClass = (at: number): [string, number] => {
    let j = at + 1;
    let cls = '[';
    if (pattern[j] === '^') cls += pattern[j++];
    // A `]` first in an RE2 class is a literal; in JS it would close it.
    if (pattern[j] === ']') {
      cls += '\\]';
      j++;
    }
    while (j < n && pattern[j] !== ']') {
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(pattern.slice(j));
      if (posix) {
        const ranges = POSIX_CLASSES[posix[2]!];
        if (ranges === undefined) return fail(`invalid character class range ${goQuote(posix[0])}`);
        // A JS class cannot nest a negated one, so spell out the complement.
        cls += classBody(posix[1] ? complement(ranges) : ranges);
        j += posix[0].length;
        continue;
      }
      const ch = pattern[j]!;
      if (ch === '\\') {
        const [js, next] = escape(j, true);
        cls += js;
        j = next;
      } else {
        cls += ch === '[' ? '\\[' : ch;
        j++;
      }
    }
    if (j >= n) fail(`missing closing ]: ${goQuote(pattern.slice(at))}`);
    return [cls + ']', j + 1];
  };

  const noFlagChange = (set: string, clear: string) =>
    [...set].every((f) => 'ims'.includes(f) && flags.includes(f)) &&
    [...clear].every((f) => 'ims'.includes(f) && !flags.includes(f));

  let m: RegExpExecArray | null;
  while (i < n) {
    const c = pattern[i]!;
    switch (c) {
      case '\\': {
        const [js, next] = escape(i, false);
        out += js;
        i = next;
        break;
      }
      case '[': {
        const [js, next] = charClass(i);
        out += js;
        i = next;
        break;
      }
      case '(': {
        if (pattern[i + 1] !== '?') {
          out += '(';
          i++;
          break;
        }
        const rest = pattern.slice(i + 2);
        if (rest.startsWith(':')) {
          out += '(?:';
          i += 3;
        } else if (/^P<[A-Za-z_]/.test(rest)) {
          out += '(?<';
          i += 4;
        } else if (/^<[A-Za-z_]/.test(rest)) {
          out += '(?<';
          i += 3;
        } else if (/^(?:=|!|<=|<!)/.test(rest)) {
          fail('lookahead and lookbehind are not supported');
        } else if ((m = /^([A-Za-z]*)(?:-([A-Za-z]*))?\)/.exec(rest)) && noFlagChange(m[1]!, m[2] ?? '')) {
          // A group that leaves every flag as it is, like `(?)`, is a no-op.
          i += 2 + m[0].length;
        } else if (/^[A-Za-z-]*[:)]/.test(rest)) {
          fail('flags are only supported as a (?flags) group at the start of the expression');
        } else {
          fail(`invalid or unsupported group syntax ${goQuote(pattern.slice(i, i + 4))}`);
        }
        break;
      }
      case '{': {
        const m = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
        if (!m) {
          // RE2 reads a `{` that does not start a repeat count as a literal.
          out += '\\{';
          i++;
          break;
        }
        if (Number(m[1]) > 1000 || (m[2] !== undefined && m[2] !== '' && Number(m[2]) > 1000)) {
          fail(`invalid repeat count ${goQuote(m[0])}`);
        }
        out += m[0];
        i += m[0].length;
        break;
      }
      case '}':
      case ']':
        out += `\\${c}`;
        i++;
        break;
      case '.':
        // RE2's `.` excludes only `\n`; JS's also excludes `\r`, U+2028, U+2029.
        out += dotAll ? '.' : '[^\\n]';
        i++;
        break;
      default:
        out += c;
        i++;
    }
  }
  try {
    return new RegExp(out, flags);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
}

const UNICODE_CATEGORIES = new Set(
  'C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs'.split(' '),
);

type Ranges = ReadonlyArray<readonly [number, number]>;

const PERL_SPACE: Ranges = [[0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]];

const POSIX_CLASSES: Record<string, Ranges> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};

/** Complement over all code points of sorted, non-overlapping ranges. */
function complement(ranges: Ranges): Ranges {
  const out: Array<[number, number]> = [];
  let next = 0;
  for (const [lo, hi] of ranges) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

function classBody(ranges: Ranges): string {
  const cp = (n: number) => `\\u{${n.toString(16)}}`;
  return ranges.map(([lo, hi]) => (lo === hi ? cp(lo) : `${cp(lo)}-${cp(hi)}`)).join('');
}

// ---------------------------------------------------------------------------

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
const GO_ESCAPES: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '"': '\\"',
  '\\': '\\\\',
};

/**
 * Quote a string the way Go's %q does, so messages read like containerd's
 * (`identifier "a b" must match ...`) and stay one line whatever the input.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const esc = GO_ESCAPES[ch];
    if (esc !== undefined) out += esc;
    else if (PRINTABLE.test(ch)) out += ch;
    else {
      const cp = ch.codePointAt(0)!;
      if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    }
  }
  return out + '"';
}
