import { describe, expect, it } from 'vitest';
import { Code, isBoxdError } from '../src/errors.js';
import {
  adaptorFrom,
  compileRegexp,
  fieldsAdaptor,
  filterMatches,
  goQuote,
  parseFilter,
  parseFilters,
  type FieldAdaptor,
} from '../src/filters.js';

const image = fieldsAdaptor(
  {
    name: 'docker.io/library/busybox:latest',
    'target.digest': 'sha256:abc',
    'target.mediatype': 'application/vnd.oci.image.index.v1+json',
  },
  {
    labels: {
      'containerd.io/uncompressed': 'sha256:abc',
      'a.b': 'dotted',
      env: 'prod',
      empty: '',
      'with space': 'x',
    },
    annotations: { 'org.opencontainers.image.ref.name': 'latest' },
  },
);

const other = fieldsAdaptor({ name: 'docker.io/library/alpine:3' }, { labels: { env: 'dev' } });

const matches = (filters: string[], adaptor: FieldAdaptor = image) => parseFilters(filters).match(adaptor);

function parseError(filter: string): Error & { code: number } {
  try {
    parseFilters([filter]);
  } catch (err) {
    expect(isBoxdError(err)).toBe(true);
    return err as Error & { code: number };
  }
  throw new Error(`expected ${JSON.stringify(filter)} to fail to parse`);
}

describe('parseFilters: match all', () => {
  it('matches everything for an empty list, null or an empty string', () => {
    expect(matches([])).toBe(true);
    expect(parseFilters(null).always).toBe(true);
    expect(parseFilters(undefined).match(() => undefined)).toBe(true);
    expect(matches([''])).toBe(true);
    expect(matches(['', ''])).toBe(true);
  });

  it('treats an empty string among others as match-all, since strings are OR-ed', () => {
    const f = parseFilters(['name==nope', '']);
    expect(f.always).toBe(true);
    expect(f.match(image)).toBe(true);
  });

  it('does not call the adaptor when the filter matches everything', () => {
    expect(parseFilters([]).match(() => { throw new Error('called'); })).toBe(true);
  });

  it('rejects whitespace-only strings, as upstream does', () => {
    expect(parseError('   ').message).toMatch(/expected a field name/);
  });
});

describe('parseFilters: operators', () => {
  it('==', () => {
    expect(matches(['name==docker.io/library/busybox:latest'])).toBe(true);
    expect(matches(['name==docker.io/library/busybox'])).toBe(false);
    expect(matches(['target.digest==sha256:abc'])).toBe(true);
    expect(matches(['target.mediatype==application/vnd.oci.image.index.v1+json'])).toBe(true);
  });

  it('!=', () => {
    expect(matches(['labels.env!=prod'])).toBe(false);
    expect(matches(['labels.env!=dev'])).toBe(true);
  });

  it('!= on an absent field matches (absent compares as the empty string, as in containerd)', () => {
    expect(matches(['labels.missing!=x'])).toBe(true);
    expect(matches(['labels.missing!=""'])).toBe(false);
  });

  it('== never matches an absent field, even against ""', () => {
    expect(matches(['labels.missing==""'])).toBe(false);
    expect(matches(['labels.empty==""'])).toBe(true);
  });

  it('~= is an unanchored regular expression match', () => {
    expect(matches(['name~=busybox'])).toBe(true);
    expect(matches(['name~=^busybox'])).toBe(false);
    expect(matches(['name~=^docker\\.io/library/busy'])).toBe(true);
    expect(matches(['name~=:latest$'])).toBe(true);
    expect(matches(['labels.env~=^(prod|staging)$'])).toBe(true);
    expect(matches(['labels.env~=^(prod|staging)$'], other)).toBe(false);
  });

  it('~= on an absent field matches the pattern against ""', () => {
    expect(matches(['labels.missing~=^$'])).toBe(true);
    expect(matches(['labels.missing~=.'])).toBe(false);
  });

  it('presence test without an operator', () => {
    expect(matches(['labels.env'])).toBe(true);
    expect(matches(['labels.missing'])).toBe(false);
    expect(matches(['name'])).toBe(true);
    // A label present with an empty value is present.
    expect(matches(['labels.empty'])).toBe(true);
  });

  it('rejects unsupported operators', () => {
    expect(parseError('name===x').message).toMatch(/column 5: unsupported operator "==="/);
    expect(parseError('name!x').message).toMatch(/unsupported operator "!"/);
  });
});

describe('parseFilters: combining', () => {
  it('AND-s the selectors of one string', () => {
    expect(matches(['labels.env==prod,name~=busybox'])).toBe(true);
    expect(matches(['labels.env==prod,name~=alpine'])).toBe(false);
    expect(matches(['labels.env,labels.missing'])).toBe(false);
  });

  it('OR-s several strings', () => {
    const filters = ['name~=alpine', 'labels.env==prod'];
    expect(matches(filters, image)).toBe(true);
    expect(matches(filters, other)).toBe(true);
    expect(matches(['name~=alpine', 'labels.env==staging'], image)).toBe(false);
  });

  it('allows whitespace around tokens', () => {
    expect(matches([' labels.env == prod , name ~= busybox '])).toBe(true);
  });

  it('exposes the parsed selectors', () => {
    const f = parseFilters(['labels."a.b"==x,name', 'name~=^d']);
    expect(f.always).toBe(false);
    expect(f.alternatives).toHaveLength(2);
    expect(f.alternatives[0]).toEqual([
      { fieldpath: ['labels', 'a.b'], operator: '==', value: 'x' },
      { fieldpath: ['name'] },
    ]);
    expect(f.alternatives[1]![0]!.regexp).toBeInstanceOf(RegExp);
  });

  it('parseFilter parses a single string and filterMatches is a one-shot', () => {
    expect(parseFilter('labels.env==prod').match(image)).toBe(true);
    expect(filterMatches(['labels.env==prod'], image)).toBe(true);
    expect(filterMatches(['labels.env==prod'], other)).toBe(false);
    expect(filterMatches([], other)).toBe(true);
  });
});

describe('parseFilters: quoting', () => {
  it('quoted label keys containing dots and slashes (the importer form)', () => {
    expect(matches(['labels."containerd.io/uncompressed"==sha256:abc'])).toBe(true);
    expect(matches(['labels."containerd.io/uncompressed"==sha256:def'])).toBe(false);
    expect(matches(['labels."containerd.io/uncompressed"'])).toBe(true);
  });

  it('/ and | as alternative delimiters', () => {
    expect(matches(['labels./a.b/==dotted'])).toBe(true);
    expect(matches(['labels.|containerd.io/uncompressed|==sha256:abc'])).toBe(true);
    expect(matches(['name~=/busybox:[a-z]+$/'])).toBe(true);
    expect(matches(['labels.env==|prod|'])).toBe(true);
  });

  it('unquoted dotted keys are joined with "." by map adaptors', () => {
    expect(matches(['labels.a.b==dotted'])).toBe(true);
  });

  it('quoted values with Go escapes', () => {
    const a = fieldsAdaptor({}, { labels: { msg: 'say "hi"\n\ttab\\', uni: 'é€😀', sp: 'a b,c' } });
    expect(matches(['labels.msg=="say \\"hi\\"\\n\\ttab\\\\"'], a)).toBe(true);
    expect(matches(['labels.uni=="\\u00e9\\u20ac\\U0001F600"'], a)).toBe(true);
    // \x and octal escapes are bytes: together they spell UTF-8.
    expect(matches(['labels.uni=="\\xc3\\xa9\\342\\202\\254😀"'], a)).toBe(true);
    expect(matches(['labels.sp=="a b,c"'], a)).toBe(true);
    expect(matches(['labels."with space"==x'])).toBe(true);
    expect(matches(['labels.msg!=/x\\/y/'], a)).toBe(true);
    expect(parseFilters(['name==/a\\/b/']).alternatives[0]![0]!.value).toBe('a/b');
    expect(parseFilters(['name==|a\\|b|']).alternatives[0]![0]!.value).toBe('a|b');
  });

  it('an empty quoted value is a value', () => {
    expect(parseFilters(['name==""']).alternatives[0]![0]).toEqual({ fieldpath: ['name'], operator: '==', value: '' });
  });

  it('unquoted values run to the next space or comma', () => {
    const a = fieldsAdaptor({}, { labels: { eq: 'a=b', url: 'https://x.io/p?q=1&r=~2' } });
    expect(matches(['labels.eq==a=b'], a)).toBe(true);
    expect(matches(['labels.url==https://x.io/p?q=1&r=~2,labels.eq'], a)).toBe(true);
    expect(parseFilters(['name==.x']).alternatives[0]![0]!.value).toBe('.x');
  });

  it('field names may contain digits and underscores', () => {
    const a = fieldsAdaptor({ runtime_name: 'io.containerd.runc.v2' }, { labels: { '0': 'zero' } });
    expect(matches(['runtime_name==io.containerd.runc.v2'], a)).toBe(true);
    expect(matches(['labels.0==zero'], a)).toBe(true);
  });
});

describe('parseFilters: errors', () => {
  it('are InvalidArgument', () => {
    const err = parseError('name==');
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.name).toBe('InvalidArgumentError');
  });

  it.each([
    ['name==', /column 7: expected a value or quoted string after "==", found end of filter/],
    ['==x', /column 1: expected a field name or quoted string, found "=="/],
    ['name=x', /column 5: unsupported operator "=" \(expected "==", "!=" or "~="\)/],
    ['name x', /column 6: expected "\.", an operator \("==", "!=" or "~="\), "," or end of filter, found "x"/],
    ['name==a b', /column 9: expected "," or end of filter, found "b"/],
    ['labels."abc==x', /column 8: unterminated quoted string \(missing closing "\)/],
    ['labels./abc==x', /column 8: unterminated quoted string \(missing closing \/\)/],
    ['name=="abc', /column 7: unterminated quoted string/],
    ['name==a,', /column 9: expected a field name or quoted string, found end of filter/],
    ['name==a,,b', /column 9: expected a field name or quoted string, found ","/],
    [',name', /column 1: expected a field name or quoted string, found ","/],
    ['labels.', /column 8: expected a field name or quoted string, found end of filter/],
    ['labels..x', /column 8: expected a field name or quoted string, found "\."/],
    ['labels.a-b==x', /column 9: expected .*, found "-"/],
    ['name=="a\\qb"', /column 9: invalid escape sequence "\\\\q" in quoted string/],
    ['name=="\\x4"', /invalid hex escape/],
    ['name=="\\400"', /invalid octal escape/],
    ['name=="\\ud800"', /invalid unicode escape/],
    ['name=="a\\/b"', /invalid escape sequence/],
    ['name=="a"b', /column 10: expected "," or end of filter, found "b"/],
    ['name==/bin/sh', /column 12: expected "," or end of filter, found "sh"/],
    ['labels."a\nb"', /unterminated quoted string/],
  ])('%j', (filter, message) => {
    const err = parseError(filter);
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`invalid filter ${goQuote(filter)} at column`);
  });

  it('an invalid regular expression is InvalidArgument', () => {
    const err = parseError('name~=(abc');
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toMatch(/invalid regular expression "\(abc"/);
    expect(err.message).toMatch(/at column 7: /);
  });

  it('reports the first failing string of several', () => {
    expect(() => parseFilters(['name==a', 'name=='])).toThrow(/invalid filter "name=="/);
  });
});

describe('compileRegexp (RE2 syntax)', () => {
  const re = (p: string) => compileRegexp(p);

  it('matches unanchored', () => {
    expect(re('b+').test('abbbc')).toBe(true);
    expect(re('^b').test('abc')).toBe(false);
  });

  it('leading flag groups', () => {
    expect(re('(?i)BUSY').test('busybox')).toBe(true);
    expect(re('(?s)a.b').test('a\nb')).toBe(true);
    expect(re('a.b').test('a\nb')).toBe(false);
    expect(re('(?m)^b$').test('a\nb\nc')).toBe(true);
    expect(re('(?i-s)x').test('X')).toBe(true);
    expect(() => re('(?U)a+')).toThrow(/ungreedy/);
    expect(() => re('a(?i)b')).toThrow(/start of the expression/);
    expect(() => re('(?i:a)')).toThrow(/start of the expression/);
  });

  it('. excludes only newline, as in RE2', () => {
    expect(re('^a.b$').test('a\rb')).toBe(true);
    expect(re('^a.b$').test('a\u2028b')).toBe(true);
    expect(re('^.$').test('😀')).toBe(true);
  });

  it('named groups, non-capturing groups and alternation', () => {
    expect(re('(?P<repo>[a-z]+)/(?:x|y)').test('abc/y')).toBe(true);
    expect(re('(?<repo>[a-z]+)').test('abc')).toBe(true);
  });

  it('RE2-only escapes and classes', () => {
    expect(re('\\Aabc\\z').test('abc')).toBe(true);
    expect(re('\\Aabc\\z').test('abc\n')).toBe(false);
    expect(re('\\Qa.b*\\E$').test('xa.b*')).toBe(true);
    expect(re('\\Qa.b*\\E').test('aab')).toBe(false);
    expect(re('^[[:alpha:]]+[[:digit:]]$').test('abc1')).toBe(true);
    expect(re('^[^[:space:]]+$').test('a b')).toBe(false);
    expect(re('\\x{1F600}').test('😀')).toBe(true);
    expect(re('\\x41\\101').test('AA')).toBe(true);
    expect(re('\\pL+').test('é')).toBe(true);
    expect(re('^\\p{Greek}+$').test('αβγ')).toBe(true);
    expect(re('^\\P{Greek}+$').test('αβγ')).toBe(false);
    expect(re('^\\p{^Greek}$').test('a')).toBe(true);
    expect(re('\\a').test('\x07')).toBe(true);
    expect(re('^(?)a$').test('a')).toBe(true);
    expect(re('(?i)a(?i)b(?-s)c').test('ABC')).toBe(true);
    expect(() => re('a(?u)b')).toThrow(/start of the expression/);
  });

  it('\\s is ASCII whitespace without \\v, as in RE2', () => {
    expect(re('^\\s$').test('\v')).toBe(false);
    expect(re('^\\s$').test('\u00a0')).toBe(false);
    expect(re('^\\s+$').test(' \t\n\f\r')).toBe(true);
    expect(re('^\\S$').test('\v')).toBe(true);
    expect(re('^[\\S]$').test('\v')).toBe(true);
    expect(re('^[\\S]$').test(' ')).toBe(false);
    expect(re('^[a\\s]+$').test('a a')).toBe(true);
  });

  it('negated POSIX classes', () => {
    expect(re('^[[:^alpha:]]+$').test('1_😀')).toBe(true);
    expect(re('^[[:^alpha:]]$').test('a')).toBe(false);
    expect(re('^[x[:^digit:]]$').test('5')).toBe(false);
  });

  it('escaped punctuation and RE2 literal braces and brackets', () => {
    expect(re('^a\\-b\\#c\\:d$').test('a-b#c:d')).toBe(true);
    expect(re('^[\\-a]+$').test('-a-')).toBe(true);
    expect(re('^a{b}$').test('a{b}')).toBe(true);
    expect(re('^a{,2}$').test('a{,2}')).toBe(true);
    expect(re('^a{2}$').test('aa')).toBe(true);
    expect(re('^[]a]+$').test(']a')).toBe(true);
    expect(re('^a]$').test('a]')).toBe(true);
    expect(re('^[a-]$').test('-')).toBe(true);
    expect(re('sha256:[0-9a-f]{64}').test(`sha256:${'a'.repeat(64)}`)).toBe(true);
  });

  it('rejects what RE2 does not support', () => {
    const unsupported = ['(a)\\1', '(?=a)', '(?!a)', '(?<=a)b', '(?<!a)b', '\\8', '\\k<x>', '\\C', '\\'];
    const invalid = ['[a', '(a', 'a{1001}', '*a', 'a**', '[[:nope:]]', '\\é', '[\\b]', '(?P=x)'];
    for (const p of [...unsupported, ...invalid]) {
      expect(() => re(p), p).toThrow(/invalid regular expression/);
    }
    try {
      re('(');
    } catch (err) {
      expect((err as { code: number }).code).toBe(Code.INVALID_ARGUMENT);
    }
  });
});

describe('fieldsAdaptor', () => {
  it('reads scalars by their joined path', () => {
    const a = fieldsAdaptor({ name: 'n', 'target.digest': 'd', size: 42, big: 1n << 63n, flag: false });
    expect(a(['name'])).toBe('n');
    expect(a(['target', 'digest'])).toBe('d');
    expect(a(['size'])).toBe('42');
    expect(a(['big'])).toBe('9223372036854775808');
    expect(a(['flag'])).toBe('false');
    expect(a(['target'])).toBeUndefined();
    expect(a(['nope'])).toBeUndefined();
    expect(a([])).toBeUndefined();
  });

  it('reports empty and null scalars as absent, as containerd adaptors do', () => {
    const a = fieldsAdaptor({ name: '', parent: null, image: undefined });
    expect(a(['name'])).toBeUndefined();
    expect(a(['parent'])).toBeUndefined();
    expect(a(['image'])).toBeUndefined();
  });

  it('reads maps with the rest of the path joined by "."', () => {
    const a = fieldsAdaptor({}, { labels: { 'a.b.c': '1', '': 'empty-key' }, annotations: null });
    expect(a(['labels', 'a', 'b', 'c'])).toBe('1');
    expect(a(['labels', 'a.b', 'c'])).toBe('1');
    expect(a(['labels'])).toBeUndefined();
    expect(a(['annotations', 'x'])).toBeUndefined();
  });

  it('accepts Map instances', () => {
    const a = fieldsAdaptor({}, { labels: new Map([['k', 'v']]) });
    expect(a(['labels', 'k'])).toBe('v');
    expect(a(['labels', 'x'])).toBeUndefined();
  });

  it('does not see inherited properties', () => {
    const a = fieldsAdaptor({}, { labels: {} });
    expect(a(['labels', 'constructor'])).toBeUndefined();
    expect(a(['labels', '__proto__'])).toBeUndefined();
    expect(a(['toString'])).toBeUndefined();
    expect(matches(['labels.constructor'], a)).toBe(false);
  });

  it('adaptorFrom is the same helper', () => {
    expect(adaptorFrom).toBe(fieldsAdaptor);
  });

  it('passes a frozen field path to custom adaptors', () => {
    let seen: string[] = [];
    parseFilters(['event.container_id==x']).match((path) => {
      seen = path;
      return undefined;
    });
    expect(seen).toEqual(['event', 'container_id']);
    expect(Object.isFrozen(seen)).toBe(true);
  });
});

describe('goQuote', () => {
  it('quotes like Go %q', () => {
    expect(goQuote('abc')).toBe('"abc"');
    expect(goQuote('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(goQuote('\n\t\x00\x7f')).toBe('"\\n\\t\\x00\\x7f"');
    expect(goQuote('é 😀')).toBe('"é 😀"');
    expect(goQuote('\u200b')).toBe('"\\u200b"');
  });
});
