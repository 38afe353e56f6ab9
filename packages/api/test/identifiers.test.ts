import { describe, expect, it } from 'vitest';
import { Code, isBoxdError } from '../src/errors.js';
import {
  IDENTIFIER_MAX_LENGTH,
  isValidIdentifier,
  isValidTopic,
  validateIdentifier,
  validateTopic,
} from '../src/identifiers.js';

const PATTERN = '^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$';

function thrown(fn: () => unknown): Error & { code: number } {
  try {
    fn();
  } catch (err) {
    expect(isBoxdError(err)).toBe(true);
    return err as Error & { code: number };
  }
  throw new Error('expected a throw');
}

describe('validateIdentifier', () => {
  it.each(['default', 'k8s.io', 'moby', 'a', '0', 'a-b_c.d', 'A1.b2-C3_d4', 'x'.repeat(IDENTIFIER_MAX_LENGTH)])(
    'accepts %j',
    (id) => {
      expect(validateIdentifier(id)).toBe(id);
      expect(isValidIdentifier(id)).toBe(true);
    },
  );

  it.each(['-a', 'a-', '.a', 'a.', 'a..b', 'a.-b', 'a b', 'a/b', 'a:b', 'é', 'a\n', '_a'])('rejects %j', (id) => {
    const err = thrown(() => validateIdentifier(id));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toBe(`identifier ${JSON.stringify(id)} must match ${PATTERN}`);
    expect(isValidIdentifier(id)).toBe(false);
  });

  it('rejects the empty identifier', () => {
    const err = thrown(() => validateIdentifier(''));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toBe('identifier must not be empty');
    expect(isValidIdentifier('')).toBe(false);
  });

  it('rejects identifiers over 76 characters', () => {
    const id = 'a'.repeat(77);
    const err = thrown(() => validateIdentifier(id));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toBe(`identifier "${id}" greater than maximum length (76 characters)`);
    expect(isValidIdentifier(id)).toBe(false);
  });

  it('measures length in bytes, so long non-ASCII input reports the length', () => {
    expect(thrown(() => validateIdentifier('é'.repeat(39))).message).toMatch(/greater than maximum length/);
  });

  it('quotes the identifier as Go does', () => {
    expect(thrown(() => validateIdentifier('a"b\t')).message).toBe(`identifier "a\\"b\\t" must match ${PATTERN}`);
  });
});

describe('validateTopic', () => {
  it.each(['/tasks/exit', '/containers/create', '/snapshot/prepare', '/a', '/a.b/c-d'])('accepts %j', (topic) => {
    expect(validateTopic(topic)).toBe(topic);
    expect(isValidTopic(topic)).toBe(true);
  });

  it.each([
    ['', 'topic must not be empty'],
    ['tasks/exit', 'topic "tasks/exit" must start with "/"'],
    ['/', 'topic "/" must have at least one component'],
    ['/tasks/', 'topic "/tasks/": invalid component "": identifier must not be empty'],
    ['//tasks', 'topic "//tasks": invalid component "": identifier must not be empty'],
    ['/tasks/ex it', `topic "/tasks/ex it": invalid component "ex it": identifier "ex it" must match ${PATTERN}`],
  ])('rejects %j', (topic, message) => {
    const err = thrown(() => validateTopic(topic));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toBe(message);
    expect(isValidTopic(topic)).toBe(false);
  });
});
