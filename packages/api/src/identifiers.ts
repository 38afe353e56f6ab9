/**
 * Identifiers: namespaces, container ids, task ids and event topic components.
 * Lease ids are deliberately not checked (containerd does not either).
 */
import { InvalidArgumentError } from './errors.js';
import { goQuote } from './filters.js';

export const IDENTIFIER_MAX_LENGTH = 76;
export const IDENTIFIER_PATTERN = '^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$';
const IDENTIFIER_RE = new RegExp(IDENTIFIER_PATTERN);

export function isValidIdentifier(s: string): boolean {
  return s.length > 0 && s.length <= IDENTIFIER_MAX_LENGTH && IDENTIFIER_RE.test(s);
}

/** Throws InvalidArgumentError unless `s` is a valid identifier; returns `s`. */
export function validateIdentifier(s: string): string {
  if (s === '') throw new InvalidArgumentError('identifier must not be empty');
  // The limit is in bytes, as upstream measures it, so the length error wins
  // over the pattern error for long non-ASCII input there as here.
  if (Buffer.byteLength(s, 'utf8') > IDENTIFIER_MAX_LENGTH) {
    throw new InvalidArgumentError(
      `identifier ${goQuote(s)} greater than maximum length (${IDENTIFIER_MAX_LENGTH} characters)`,
    );
  }
  if (!IDENTIFIER_RE.test(s)) {
    throw new InvalidArgumentError(`identifier ${goQuote(s)} must match ${IDENTIFIER_PATTERN}`);
  }
  return s;
}

/** An event topic: `/` followed by `/`-separated identifiers, e.g. `/tasks/exit`. */
export function validateTopic(topic: string): string {
  if (topic === '') throw new InvalidArgumentError('topic must not be empty');
  if (!topic.startsWith('/')) throw new InvalidArgumentError(`topic ${goQuote(topic)} must start with "/"`);
  if (topic.length === 1) throw new InvalidArgumentError(`topic ${goQuote(topic)} must have at least one component`);
  for (const component of topic.slice(1).split('/')) {
    try {
      validateIdentifier(component);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new InvalidArgumentError(`topic ${goQuote(topic)}: invalid component ${goQuote(component)}: ${reason}`, {
        cause: err,
      });
    }
  }
  return topic;
}

export function isValidTopic(topic: string): boolean {
  return topic.length > 1 && topic.startsWith('/') && topic.slice(1).split('/').every(isValidIdentifier);
}
