/**
 * Field masks of Update calls (`update_mask.paths`).
 *
 * A path is `field` (replace the whole field) or `field.<key>` for map fields
 * (copy one entry; the key is everything after the first `.`, so label keys
 * may contain dots). Each server describes its allowed fields with a
 * {@link FieldMaskSpec}; anything else is rejected before anything changes.
 */
import { InvalidArgumentError } from './errors.js';
import { goQuote } from './filters.js';

export interface MaskPath {
  field: string;
  /** Present for `field.<key>`; may be `''` for a trailing dot, which no rule accepts. */
  key?: string;
}

export function splitMaskPath(path: string): MaskPath {
  const dot = path.indexOf('.');
  return dot < 0 ? { field: path } : { field: path.slice(0, dot), key: path.slice(dot + 1) };
}

/**
 * How one field is updated:
 * - `'value'`: the path copies the property from the update (no `.<key>` form).
 * - `'map'`: the bare path replaces the map; `field.<key>` copies one entry,
 *   deleting it when the update lacks it or has it empty.
 * - the object form names the property when it differs from the path
 *   (`snapshotkey` -> `snapshotKey`);
 * - a function handles the path itself, writing into `target` (a shallow copy
 *   of the current object; copy nested objects before mutating them).
 */
export type MaskRule<T> =
  | 'value'
  | 'map'
  | { readonly kind: 'value' | 'map'; readonly prop: keyof T & string }
  | ((target: T, update: Readonly<T>, key: string | undefined, path: string) => void);

export interface FieldMaskSpec<T> {
  /** Keyed by the field name as it appears in mask paths. */
  readonly fields: Readonly<Record<string, MaskRule<T>>>;
  /** Paths applied when the mask is empty; each Update rpc defines its own. */
  readonly whenEmpty: readonly string[];
}

/**
 * Apply `paths` from `update` onto `current`, returning a new object; the
 * inputs are not modified. Unknown paths throw InvalidArgumentError
 * `cannot update "<p>" field on <what>` before any change is made.
 */
export function applyFieldMask<T extends object>(
  current: T,
  update: T,
  paths: readonly string[] | null | undefined,
  spec: FieldMaskSpec<T>,
  what: string,
): T {
  const effective = paths && paths.length > 0 ? paths : spec.whenEmpty;
  const steps = effective.map((path) => {
    const { field, key } = splitMaskPath(path);
    const rule = Object.hasOwn(spec.fields, field) ? spec.fields[field] : undefined;
    const kind = ruleKind(rule);
    const ok = kind === 'custom' || (kind === 'value' && key === undefined) || (kind === 'map' && key !== '');
    if (!ok) throw new InvalidArgumentError(`cannot update ${goQuote(path)} field on ${what}`);
    return { path, field, key, rule: rule! };
  });

  const target = { ...current } as T;
  const out = target as Record<string, unknown>;
  const src = update as Record<string, unknown>;
  for (const { path, field, key, rule } of steps) {
    if (typeof rule === 'function') {
      rule(target, update, key, path);
      continue;
    }
    const kind = ruleKind(rule);
    const prop = typeof rule === 'string' ? field : rule.prop;
    if (kind === 'value') out[prop] = src[prop];
    else if (key === undefined) out[prop] = copyMap(src[prop]);
    else out[prop] = withEntry(out[prop], src[prop], key);
  }
  return target;
}

function ruleKind<T>(rule: MaskRule<T> | undefined): 'value' | 'map' | 'custom' | undefined {
  if (rule === undefined) return undefined;
  if (typeof rule === 'function') return 'custom';
  return typeof rule === 'string' ? rule : rule.kind;
}

type MapRecord = Record<string, unknown>;

// Object.fromEntries defines own properties, so a `__proto__` key stays a key
// instead of replacing the prototype as an assignment would.
function copyMap(map: unknown): MapRecord {
  return Object.fromEntries(Object.entries((map ?? {}) as MapRecord));
}

function withEntry(current: unknown, update: unknown, key: string): MapRecord {
  const entries = new Map(Object.entries((current ?? {}) as MapRecord));
  const source = (update ?? {}) as MapRecord;
  const value = Object.hasOwn(source, key) ? source[key] : undefined;
  if (value === undefined || value === null || value === '') entries.delete(key);
  else entries.set(key, value);
  return Object.fromEntries(entries);
}

/** The mask of Update rpcs whose only mutable field is `labels` (content, snapshots, namespaces). */
export const LABELS_MASK: FieldMaskSpec<{ labels?: Record<string, string> }> = {
  fields: { labels: 'map' },
  whenEmpty: ['labels'],
};

/**
 * Apply a labels-only mask (`labels`, `labels.<k>`; empty mask replaces all
 * labels). Returns the new labels; neither input is modified.
 */
export function applyLabelMask(
  current: Readonly<Record<string, string>> | null | undefined,
  update: Readonly<Record<string, string>> | null | undefined,
  paths: readonly string[] | null | undefined,
  what: string,
): Record<string, string> {
  const result = applyFieldMask(
    { labels: { ...(current ?? {}) } },
    { labels: { ...(update ?? {}) } },
    paths,
    LABELS_MASK,
    what,
  );
  return result.labels ?? {};
}
