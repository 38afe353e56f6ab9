// Wire-compatibility check of boxd's own .proto files (/proto) against
// upstream containerd 1.6's, as installed by the Debian package
// golang-github-containerd-containerd-dev. Upstream files are only read here
// as a reference; nothing is copied from them.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const OURS_DIR = path.resolve(HERE, '../../../proto');
const GOCODE = process.env.BOXD_UPSTREAM_GOCODE ?? '/usr/share/gocode/src';
const CONTAINERD = 'github.com/containerd/containerd';

const INSTALL_HINT =
  'Upstream reference .proto files are missing. Install them with ' +
  '`apt-get install -y golang-github-containerd-containerd-dev` ' +
  '(it also pulls golang-github-gogo-googleapis-dev and golang-google-grpc-dev), ' +
  `or point BOXD_UPSTREAM_GOCODE at a gocode tree (looked under ${GOCODE}).`;

/** Our file -> the upstream reference file(s) it mirrors (first existing candidate wins). */
const MIRRORS: ReadonlyArray<{ ours: string; upstream: readonly string[] }> = [
  { ours: 'containerd/types/descriptor.proto', upstream: [`${CONTAINERD}/api/types/descriptor.proto`] },
  { ours: 'containerd/types/mount.proto', upstream: [`${CONTAINERD}/api/types/mount.proto`] },
  { ours: 'containerd/types/platform.proto', upstream: [`${CONTAINERD}/api/types/platform.proto`] },
  { ours: 'containerd/types/metrics.proto', upstream: [`${CONTAINERD}/api/types/metrics.proto`] },
  { ours: 'containerd/types/task.proto', upstream: [`${CONTAINERD}/api/types/task/task.proto`] },
  { ours: 'containerd/services/version/v1/version.proto', upstream: [`${CONTAINERD}/api/services/version/v1/version.proto`] },
  { ours: 'containerd/services/namespaces/v1/namespaces.proto', upstream: [`${CONTAINERD}/api/services/namespaces/v1/namespace.proto`] },
  { ours: 'containerd/services/content/v1/content.proto', upstream: [`${CONTAINERD}/api/services/content/v1/content.proto`] },
  { ours: 'containerd/services/images/v1/images.proto', upstream: [`${CONTAINERD}/api/services/images/v1/images.proto`] },
  { ours: 'containerd/services/containers/v1/containers.proto', upstream: [`${CONTAINERD}/api/services/containers/v1/containers.proto`] },
  { ours: 'containerd/services/snapshots/v1/snapshots.proto', upstream: [`${CONTAINERD}/api/services/snapshots/v1/snapshots.proto`] },
  { ours: 'containerd/services/diff/v1/diff.proto', upstream: [`${CONTAINERD}/api/services/diff/v1/diff.proto`] },
  { ours: 'containerd/services/leases/v1/leases.proto', upstream: [`${CONTAINERD}/api/services/leases/v1/leases.proto`] },
  { ours: 'containerd/services/events/v1/events.proto', upstream: [`${CONTAINERD}/api/services/events/v1/events.proto`] },
  { ours: 'containerd/services/events/ttrpc/v1/events.proto', upstream: [`${CONTAINERD}/api/services/ttrpc/events/v1/events.proto`] },
  { ours: 'containerd/services/tasks/v1/tasks.proto', upstream: [`${CONTAINERD}/api/services/tasks/v1/tasks.proto`] },
  { ours: 'containerd/services/introspection/v1/introspection.proto', upstream: [`${CONTAINERD}/api/services/introspection/v1/introspection.proto`] },
  { ours: 'containerd/events/container.proto', upstream: [`${CONTAINERD}/api/events/container.proto`] },
  { ours: 'containerd/events/content.proto', upstream: [`${CONTAINERD}/api/events/content.proto`] },
  { ours: 'containerd/events/image.proto', upstream: [`${CONTAINERD}/api/events/image.proto`] },
  { ours: 'containerd/events/namespace.proto', upstream: [`${CONTAINERD}/api/events/namespace.proto`] },
  { ours: 'containerd/events/snapshot.proto', upstream: [`${CONTAINERD}/api/events/snapshot.proto`] },
  { ours: 'containerd/events/task.proto', upstream: [`${CONTAINERD}/api/events/task.proto`] },
  { ours: 'containerd/runtime/v2/task/shim.proto', upstream: [`${CONTAINERD}/runtime/v2/task/shim.proto`] },
  { ours: 'containerd/runtime/v2/runc/options/oci.proto', upstream: [`${CONTAINERD}/runtime/v2/runc/options/oci.proto`] },
  // The cgroup metrics shims return from Stats (package golang-github-containerd-cgroups-dev).
  { ours: 'cgroups/v1/metrics.proto', upstream: ['github.com/containerd/cgroups/stats/v1/metrics.proto'] },
  { ours: 'cgroups/v2/metrics.proto', upstream: ['github.com/containerd/cgroups/v2/stats/metrics.proto'] },
  // Not containerd's, but reference copies come with the same package's dependencies.
  { ours: 'google/rpc/status.proto', upstream: ['github.com/gogo/googleapis/google/rpc/status.proto'] },
  {
    ours: 'grpc/health/v1/health.proto',
    upstream: [
      'google.golang.org/grpc/health/grpc_health_v1/health.proto',
      'google.golang.org/grpc/debian/missing-sources/grpc/grpc-proto/master/grpc/health/v1/health.proto',
    ],
  },
];

// ---------------------------------------------------------------------------
// Loading

type AnyReflection = protobuf.Type | protobuf.Enum | protobuf.Service;

function listProtoFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    // proto/boxd/ holds boxd's own internal protocols: no upstream counterpart.
    if (ent.isDirectory() && r === 'boxd') continue;
    if (ent.isDirectory()) out.push(...listProtoFiles(dir, r));
    else if (ent.name.endsWith('.proto')) out.push(r);
  }
  return out.sort();
}

/** Loads our files; imports are relative to /proto, google/protobuf/* come bundled with protobufjs. */
function loadOurs(files: readonly string[] = listProtoFiles(OURS_DIR), keepCase = true): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(OURS_DIR, target));
  root.loadSync(files as string[], { keepCase });
  root.resolveAll();
  return root;
}

function resolveUpstreamCandidates(candidates: readonly string[]): string | undefined {
  return candidates.map((c) => path.join(GOCODE, c)).find((p) => existsSync(p));
}

function upstreamFiles(): { files: string[]; missing: string[] } {
  const files: string[] = [];
  const missing: string[] = [];
  for (const m of MIRRORS) {
    const found = resolveUpstreamCandidates(m.upstream);
    if (found) files.push(found);
    else missing.push(m.upstream.map((c) => path.join(GOCODE, c)).join(' or '));
  }
  return { files, missing };
}

/** Option-only imports (gogoproto, containerd's fieldpath plugin) are skipped: we only need the schema. */
function isOptionOnlyImport(target: string): boolean {
  return (
    target === 'gogoproto/gogo.proto' ||
    target.endsWith('/gogoproto/gogo.proto') ||
    target.endsWith('protobuf/plugin/fieldpath.proto') ||
    target === 'google/protobuf/descriptor.proto'
  );
}

function loadUpstream(): protobuf.Root {
  const { files, missing } = upstreamFiles();
  if (missing.length > 0) {
    throw new Error(`${INSTALL_HINT}\nMissing:\n  ${missing.join('\n  ')}`);
  }
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (isOptionOnlyImport(target)) return null;
    if (path.isAbsolute(target)) return target;
    if (target === 'google/rpc/status.proto') {
      return path.join(GOCODE, 'github.com/gogo/googleapis/google/rpc/status.proto');
    }
    return path.join(GOCODE, target);
  };
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  return root;
}

/** Every message, enum and service in a root, keyed by full name (without leading dot). */
function collect(root: protobuf.Root, skipWellKnown = true): Map<string, AnyReflection> {
  const out = new Map<string, AnyReflection>();
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum || obj instanceof protobuf.Service) {
        const name = obj.fullName.replace(/^\./, '');
        if (!(skipWellKnown && name.startsWith('google.protobuf.'))) out.set(name, obj);
      }
      if (obj instanceof protobuf.Namespace) walk(obj); // Type and Service are namespaces too
    }
  };
  walk(root);
  return out;
}

// ---------------------------------------------------------------------------
// Comparison

function kindOf(obj: AnyReflection): string {
  if (obj instanceof protobuf.Type) return 'message';
  if (obj instanceof protobuf.Enum) return 'enum';
  return 'service';
}

function typeName(field: protobuf.Field): string {
  return field.resolvedType ? field.resolvedType.fullName.replace(/^\./, '') : field.type;
}

function describeField(field: protobuf.Field): string {
  const parts: string[] = [];
  if (field instanceof protobuf.MapField) parts.push(`map<${field.keyType}, ${typeName(field)}>`);
  else {
    if (field.repeated) parts.push('repeated');
    parts.push(typeName(field));
  }
  parts.push(`${field.name} = ${field.id}`);
  if (field.repeated && field.packed) parts.push('[packed]');
  if (field.partOf) parts.push(`(oneof ${field.partOf.name})`);
  if (field.hasPresence && !field.resolvedType && !field.repeated) parts.push('(explicit presence)');
  return parts.join(' ');
}

function compareMessage(name: string, ours: protobuf.Type, up: protobuf.Type, diffs: string[]): void {
  const upByName = new Map(up.fieldsArray.map((f) => [f.name, f]));
  const oursByName = new Map(ours.fieldsArray.map((f) => [f.name, f]));
  for (const f of ours.fieldsArray) {
    const u = upByName.get(f.name);
    if (!u) {
      const clash = up.fieldsArray.find((x) => x.id === f.id);
      diffs.push(
        `message ${name}: field "${f.name}" (${describeField(f)}) does not exist upstream` +
          (clash ? `; upstream uses number ${f.id} for "${describeField(clash)}"` : ''),
      );
      continue;
    }
    const a = describeField(f);
    const b = describeField(u);
    if (a !== b) diffs.push(`message ${name}: field "${f.name}" differs\n      ours:     ${a}\n      upstream: ${b}`);
  }
  for (const u of up.fieldsArray) {
    if (!oursByName.has(u.name)) diffs.push(`message ${name}: missing upstream field "${describeField(u)}"`);
  }
  const oneofs = (t: protobuf.Type): string =>
    t.oneofsArray
      .map((o) => `${o.name}{${o.fieldsArray.map((f) => f.name).sort().join(',')}}`)
      .sort()
      .join(' ');
  if (oneofs(ours) !== oneofs(up)) {
    diffs.push(`message ${name}: oneofs differ\n      ours:     ${oneofs(ours) || '(none)'}\n      upstream: ${oneofs(up) || '(none)'}`);
  }
}

function compareEnum(name: string, ours: protobuf.Enum, up: protobuf.Enum, diffs: string[]): void {
  for (const [k, v] of Object.entries(ours.values)) {
    if (!(k in up.values)) diffs.push(`enum ${name}: value ${k} = ${v} does not exist upstream`);
    else if (up.values[k] !== v) diffs.push(`enum ${name}: value ${k} is ${v} here but ${up.values[k]} upstream`);
  }
  for (const [k, v] of Object.entries(up.values)) {
    if (!(k in ours.values)) diffs.push(`enum ${name}: missing upstream value ${k} = ${v}`);
  }
}

function describeMethod(m: protobuf.Method): string {
  const req = m.resolvedRequestType?.fullName.replace(/^\./, '') ?? m.requestType;
  const res = m.resolvedResponseType?.fullName.replace(/^\./, '') ?? m.responseType;
  return `rpc ${m.name}(${m.requestStream ? 'stream ' : ''}${req}) returns (${m.responseStream ? 'stream ' : ''}${res})`;
}

function compareService(name: string, ours: protobuf.Service, up: protobuf.Service, diffs: string[]): void {
  for (const m of ours.methodsArray) {
    const u = up.methods[m.name];
    if (!u) {
      diffs.push(`service ${name}: method ${m.name} does not exist upstream`);
      continue;
    }
    const a = describeMethod(m);
    const b = describeMethod(u);
    if (a !== b) diffs.push(`service ${name}: method ${m.name} differs\n      ours:     ${a}\n      upstream: ${b}`);
  }
  for (const u of up.methodsArray) {
    if (!ours.methods[u.name]) diffs.push(`service ${name}: missing upstream method "${describeMethod(u)}"`);
  }
}

/**
 * Compares every message/enum/service we define against upstream, both ways for
 * members, and reports upstream definitions (from the mirrored files) we lack.
 */
function compareRoots(oursRoot: protobuf.Root, upstreamRoot: protobuf.Root): string[] {
  const diffs: string[] = [];
  const ours = collect(oursRoot);
  const up = collect(upstreamRoot);
  for (const [name, o] of ours) {
    const u = up.get(name);
    if (!u) {
      diffs.push(`${kindOf(o)} ${name} (${o.filename ?? '?'}) does not exist upstream`);
      continue;
    }
    if (kindOf(o) !== kindOf(u)) {
      diffs.push(`${name} is a ${kindOf(o)} here but a ${kindOf(u)} upstream`);
      continue;
    }
    if (o instanceof protobuf.Type) compareMessage(name, o, u as protobuf.Type, diffs);
    else if (o instanceof protobuf.Enum) compareEnum(name, o, u as protobuf.Enum, diffs);
    else compareService(name, o, u as protobuf.Service, diffs);
  }
  for (const [name, u] of up) {
    if (!ours.has(name)) diffs.push(`missing upstream ${kindOf(u)} ${name} (from ${u.filename ?? '?'})`);
  }
  return diffs;
}

function report(diffs: string[]): string {
  return diffs.length === 0 ? 'no differences' : `${diffs.length} difference(s):\n  - ${diffs.join('\n  - ')}`;
}

// ---------------------------------------------------------------------------
// Wire round trip: encode a fully populated message with our schema, decode it
// with upstream's, and compare.

function sampleScalar(type: string, seed: number): unknown {
  switch (type) {
    case 'string':
      return `s${seed}`;
    case 'bytes':
      return Uint8Array.from([seed & 0xff, 0x80, 0x01]);
    case 'bool':
      return true;
    case 'double':
    case 'float':
      return seed + 0.5;
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return `-${1_000_000_000_000 + seed}`; // fromObject parses decimal strings into Long
    case 'uint64':
    case 'fixed64':
      return (9_000_000_000_000_000n + BigInt(seed)).toString();
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return -(seed + 1);
    default:
      return seed + 1; // uint32, fixed32
  }
}

function sampleValue(field: protobuf.Field, seed: number, depth: number): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) {
    const nums = Object.values(t.values);
    return nums[nums.length - 1];
  }
  if (t instanceof protobuf.Type) return sampleMessage(t, seed, depth + 1);
  return sampleScalar(field.type, seed);
}

function sampleMessage(type: protobuf.Type, seed: number, depth: number): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  if (depth > 3) return obj;
  for (const f of type.fieldsArray) {
    const s = seed * 31 + f.id;
    if (f instanceof protobuf.MapField) {
      const key = f.keyType === 'string' ? `k${s}` : String(s);
      obj[f.name] = { [key]: sampleValue(f, s, depth) };
    } else if (f.repeated) {
      obj[f.name] = [sampleValue(f, s, depth), sampleValue(f, s + 1, depth)];
    } else {
      obj[f.name] = sampleValue(f, s, depth);
    }
  }
  return obj;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: Number, bytes: String, defaults: false };

// ---------------------------------------------------------------------------

describe('proto wire compatibility with upstream containerd 1.6', () => {
  it('every file in /proto is covered by the mirror table', () => {
    const files = listProtoFiles(OURS_DIR);
    const mirrored = new Set(MIRRORS.map((m) => m.ours));
    expect(files.filter((f) => !mirrored.has(f)), 'proto files without an upstream reference').toEqual([]);
    expect([...mirrored].filter((f) => !files.includes(f)), 'mirror table entries without a file').toEqual([]);
  });

  it('all our files load into one protobufjs Root (keepCase false) and each loads on its own', () => {
    const files = listProtoFiles(OURS_DIR);
    expect(() => loadOurs(files, false)).not.toThrow();
    for (const f of files) expect(() => loadOurs([f], false), f).not.toThrow();
  });

  it('upstream reference protos are installed', () => {
    const { missing } = upstreamFiles();
    if (missing.length > 0) throw new Error(`${INSTALL_HINT}\nMissing:\n  ${missing.join('\n  ')}`);
  });

  it('every message, enum and service matches upstream (names, numbers, types, labels, streaming)', () => {
    const diffs = compareRoots(loadOurs(), loadUpstream());
    if (diffs.length > 0) throw new Error(`our protos are not wire-compatible with upstream: ${report(diffs)}`);
    expect(diffs).toEqual([]);
  });

  it('fully populated messages encoded with our schema decode identically with upstream', () => {
    const oursRoot = loadOurs();
    const upRoot = loadUpstream();
    const failures: string[] = [];
    for (const [name, t] of collect(oursRoot)) {
      if (!(t instanceof protobuf.Type)) continue;
      const u = upRoot.lookupType(name);
      const sample = sampleMessage(t, 1, 0);
      const bytes = t.encode(t.fromObject(sample)).finish();
      const decodedUp = u.toObject(u.decode(bytes), TO_OBJECT);
      const decodedOurs = t.toObject(t.decode(bytes), TO_OBJECT);
      const back = u.encode(u.fromObject(decodedUp)).finish();
      if (JSON.stringify(decodedUp) !== JSON.stringify(decodedOurs)) {
        failures.push(`${name}: decoded differently\n      ours:     ${JSON.stringify(decodedOurs)}\n      upstream: ${JSON.stringify(decodedUp)}`);
      } else if (Buffer.compare(Buffer.from(back), Buffer.from(bytes)) !== 0) {
        failures.push(`${name}: re-encoding with upstream's schema changed the bytes`);
      }
    }
    if (failures.length > 0) throw new Error(`wire round trip failed:\n  - ${failures.join('\n  - ')}`);
  });
});

describe('proto compatibility checker catches breakage', () => {
  // These run only against our own files plus a second, untouched copy of them,
  // so they work whether or not upstream's files are installed.
  const baseline = (): protobuf.Root => loadOurs();

  it('reports nothing for identical schemas', () => {
    expect(compareRoots(loadOurs(), baseline())).toEqual([]);
  });

  it('reports a changed field number', () => {
    const root = loadOurs();
    root.lookupType('containerd.types.Mount').fields['target']!.id = 9;
    const diffs = compareRoots(root, baseline());
    expect(diffs.join('\n')).toMatch(/containerd\.types\.Mount: field "target" differs/);
    expect(diffs.join('\n')).toContain('target = 9');
  });

  it('reports a changed field type and label', () => {
    const root = loadOurs();
    const t = root.lookupType('containerd.task.v2.StateResponse');
    const pid = t.fields['pid']!;
    pid.type = 'int32';
    const mounts = root.lookupType('containerd.services.snapshots.v1.MountsResponse').fields['mounts']!;
    mounts.repeated = false;
    const diffs = compareRoots(root, baseline()).join('\n');
    expect(diffs).toMatch(/StateResponse: field "pid" differs[\s\S]*int32 pid = 3[\s\S]*uint32 pid = 3/);
    expect(diffs).toMatch(/MountsResponse: field "mounts" differs/);
  });

  it('reports a missing field, an extra field and a missing message', () => {
    const root = loadOurs();
    const desc = root.lookupType('containerd.types.Descriptor');
    desc.remove(desc.fields['annotations']!);
    desc.add(new protobuf.Field('urls', 6, 'string', 'repeated'));
    const events = root.lookup('containerd.events') as protobuf.Namespace;
    events.remove(events.lookupType('TaskOOM'));
    const diffs = compareRoots(root, baseline()).join('\n');
    expect(diffs).toContain('containerd.types.Descriptor: missing upstream field "map<string, string> annotations = 5"');
    expect(diffs).toContain('containerd.types.Descriptor: field "urls"');
    expect(diffs).toContain('missing upstream message containerd.events.TaskOOM');
  });

  it('reports enum value and rpc shape changes', () => {
    const root = loadOurs();
    const status = root.lookupEnum('containerd.v1.types.Status');
    status.remove('PAUSING');
    root.lookupEnum('containerd.services.content.v1.WriteAction').values['COMMIT'] = 3;
    const content = root.lookupService('containerd.services.content.v1.Content');
    content.methods['Read']!.responseStream = false;
    const task = root.lookupService('containerd.task.v2.Task');
    task.remove(task.methods['Shutdown']!);
    const diffs = compareRoots(root, baseline()).join('\n');
    expect(diffs).toContain('enum containerd.v1.types.Status: missing upstream value PAUSING = 5');
    expect(diffs).toContain('enum containerd.services.content.v1.WriteAction: value COMMIT is 3 here but 2 upstream');
    expect(diffs).toMatch(/method Read differs\n.*returns \(containerd\.services\.content\.v1\.ReadContentResponse\)\n.*returns \(stream /);
    expect(diffs).toContain('service containerd.task.v2.Task: missing upstream method "rpc Shutdown(');
  });
});
