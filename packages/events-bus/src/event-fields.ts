/**
 * What a subscription filter sees of an envelope: `namespace`, `topic` and
 * `event.<field>`, where the event is decoded by its type URL.
 *
 * containerd answers `event.<field>` only for the message types it generates
 * field accessors for (the event messages), and only for some field kinds.
 * The rules below are those, so a filter selects the same events here as on
 * containerd:
 * - fields are named as in the .proto (`event.container_id`);
 * - a string is present when non-empty; a bool is always present ("true"/"false");
 * - a `labels` map is looked up with the rest of the path joined by `.`;
 * - a nested event message is descended into; a nested Any is decoded by its
 *   type URL and descended into;
 * - numbers, bytes, enums, timestamps, repeated fields and other maps are absent;
 * - an unknown type URL, a type that is not an event, or undecodable bytes: absent.
 */
import { protoRoot, type FieldAdaptor } from '@boxd/api';
import type protobuf from 'protobufjs';
import type { Envelope } from './envelope.js';

interface AnyValue {
  type_url?: string | null;
  value?: Uint8Array | null;
}

type Message = Record<string, unknown>;

// Message types containerd generates field accessors for, by package or name.
const ADDRESSABLE_PACKAGES = ['containerd.events.'];
const ADDRESSABLE_TYPES = new Set([
  'containerd.services.images.v1.ImageCreate',
  'containerd.services.images.v1.ImageUpdate',
  'containerd.services.images.v1.ImageDelete',
  'containerd.services.events.v1.Envelope',
  'containerd.services.events.ttrpc.v1.Envelope',
]);

const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;

function isAddressable(typeName: string): boolean {
  return ADDRESSABLE_TYPES.has(typeName) || ADDRESSABLE_PACKAGES.some((p) => typeName.startsWith(p));
}

/**
 * The event type a type URL names, if filters may look into it. Type URLs are
 * bare full names; anything else (a `type.googleapis.com/` prefix, a partial
 * name) does not resolve, as in containerd's type registry.
 */
export function addressableType(typeUrl: string | null | undefined): protobuf.Type | undefined {
  if (!typeUrl || !TYPE_NAME.test(typeUrl) || !isAddressable(typeUrl)) return undefined;
  let found: protobuf.ReflectionObject | null;
  try {
    found = protoRoot().lookup(`.${typeUrl}`);
  } catch {
    return undefined;
  }
  const type = found as protobuf.Type | null;
  return type && type.fullName === `.${typeUrl}` && 'fieldsArray' in type ? type : undefined;
}

// The generated descriptor names fields in camelCase; filters use the .proto
// names. protobufjs derives camelCase from snake_case, so reversing it gives
// back the .proto name for every lowercase snake_case field (all event fields).
function protoName(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

const fieldsByProtoName = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function fieldNamed(type: protobuf.Type, name: string): protobuf.Field | undefined {
  let fields = fieldsByProtoName.get(type);
  if (!fields) {
    fields = new Map(type.fieldsArray.map((f) => [protoName(f.name), f]));
    fieldsByProtoName.set(type, fields);
  }
  return fields.get(name);
}

function decodeAny(any: AnyValue | null | undefined): { type: protobuf.Type; message: Message } | undefined {
  const type = addressableType(any?.type_url);
  if (!type) return undefined;
  try {
    return { type, message: type.decode(any!.value ?? new Uint8Array(0)) as unknown as Message };
  } catch {
    return undefined;
  }
}

function mapValue(field: protobuf.Field, message: Message, rest: readonly string[]): string | undefined {
  if (field.name !== 'labels' || field.type !== 'string' || (field as unknown as protobuf.MapField).keyType !== 'string') return undefined;
  const map = message[field.name] as Record<string, string> | undefined;
  if (!map || Object.keys(map).length === 0) return undefined;
  const key = rest.join('.');
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

/** The value of `path` in a decoded message of `type`, or undefined when absent. */
export function messageField(type: protobuf.Type, message: Message, path: readonly string[]): string | undefined {
  const [head, ...rest] = path;
  if (head === undefined) return undefined;
  const field = fieldNamed(type, head);
  if (!field) return undefined;
  if (field.map) return mapValue(field, message, rest);
  if (field.repeated) return undefined;
  const value = message[field.name];
  if (field.type === 'string') return typeof value === 'string' && value !== '' ? value : undefined;
  if (field.type === 'bool') return String(value === true);
  const nested = field.resolve().resolvedType;
  if (!nested || !('fieldsArray' in nested) || value === null || value === undefined) return undefined;
  const nestedName = nested.fullName.slice(1);
  if (nestedName === 'google.protobuf.Any') {
    const decoded = decodeAny(value as AnyValue);
    return decoded && messageField(decoded.type, decoded.message, rest);
  }
  if (!isAddressable(nestedName)) return undefined;
  return messageField(nested as protobuf.Type, value as Message, rest);
}

/**
 * A filter adaptor over one envelope. The event payload is decoded at most
 * once, and only if some filter asks for an `event.` field.
 */
export function envelopeAdaptor(envelope: Envelope): FieldAdaptor {
  let decoded: ReturnType<typeof decodeAny> | null = null;
  return (fieldpath) => {
    switch (fieldpath[0]) {
      case 'namespace':
        return envelope.namespace || undefined;
      case 'topic':
        return envelope.topic || undefined;
      case 'event':
        if (decoded === null) decoded = decodeAny(envelope.event);
        return decoded && messageField(decoded.type, decoded.message, fieldpath.slice(1));
      default:
        return undefined;
    }
  };
}
