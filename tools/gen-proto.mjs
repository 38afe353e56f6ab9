#!/usr/bin/env node
// Generates packages/api/src/generated/ from proto/: one TypeScript module per
// protobuf package (interfaces, enums, codecs, service definitions) plus the
// reflection descriptor the codecs are built from at run time.
import { createRequire } from 'node:module';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const require = createRequire(join(repo, 'packages/api/package.json'));
const protobuf = require('protobufjs');

const protoRoot = join(repo, 'proto');
const outDir = join(repo, 'packages/api/src/generated');

function protoFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return protoFiles(path);
    return name.endsWith('.proto') ? [relative(protoRoot, path)] : [];
  });
}

function loadRoot() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') || target.startsWith('/') ? target : join(protoRoot, target));
  root.loadSync(protoFiles(protoRoot).map((f) => join(protoRoot, f)), { keepCase: false });
  root.resolveAll();
  return root;
}

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const NUMBER_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'float', 'double']);

const moduleName = (pkg) => pkg;
const alias = (pkg) => pkg.replace(/\./g, '_');
/** Local TS name of a (possibly nested) type: Parent_Child. */
const localName = (type, pkg) => type.fullName.slice(pkg.length + 2).replace(/\./g, '_');

function packageOf(obj) {
  let ns = obj.parent;
  while (ns && !(ns instanceof protobuf.Namespace && !(ns instanceof protobuf.Type) && !(ns instanceof protobuf.Service))) ns = ns.parent;
  return ns.fullName.replace(/^\./, '');
}

function collect(root) {
  const byPackage = new Map();
  const visit = (ns) => {
    for (const obj of ns.nestedArray ?? []) {
      if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum || obj instanceof protobuf.Service) {
        const pkg = packageOf(obj);
        if (!byPackage.has(pkg)) byPackage.set(pkg, []);
        byPackage.get(pkg).push(obj);
      }
      if (obj instanceof protobuf.Namespace) visit(obj);
    }
  };
  visit(root);
  return byPackage;
}

function typeRef(resolved, pkg, imports) {
  const other = packageOf(resolved);
  const name = localName(resolved, other);
  if (other === pkg) return name;
  imports.add(other);
  return `${alias(other)}.${name}`;
}

function scalarType(type) {
  if (LONG_TYPES.has(type)) return 'Long';
  if (NUMBER_TYPES.has(type)) return 'number';
  if (type === 'bool') return 'boolean';
  if (type === 'string') return 'string';
  if (type === 'bytes') return 'Uint8Array';
  return undefined;
}

function fieldType(field, pkg, imports) {
  const valueType = field.resolvedType ? typeRef(field.resolvedType, pkg, imports) : scalarType(field.type);
  if (!valueType) throw new Error(`unknown type ${field.type} in ${field.fullName}`);
  if (field.map) return `Record<string, ${valueType}>`;
  if (field.repeated) return `${valueType}[]`;
  return valueType;
}

function emitMessage(type, pkg, imports) {
  const name = localName(type, pkg);
  const lines = [`export interface ${name} {`];
  for (const field of type.fieldsArray) {
    const isMessage = field.resolvedType instanceof protobuf.Type && !field.repeated && !field.map;
    const t = fieldType(field, pkg, imports);
    lines.push(isMessage ? `  ${field.name}?: ${t} | null;` : `  ${field.name}: ${t};`);
  }
  lines.push('}');
  lines.push(`export const ${name}: MessageCodec<${name}> = codec<${name}>('${type.fullName.slice(1)}');`);
  return lines.join('\n');
}

function emitEnum(en, pkg) {
  const name = localName(en, pkg);
  const entries = Object.entries(en.values).map(([k, v]) => `  ${k}: ${v},`);
  return [`export const ${name} = {`, ...entries, '} as const;', `export type ${name} = (typeof ${name})[keyof typeof ${name}];`].join('\n');
}

function emitService(svc, pkg, imports) {
  const name = `${localName(svc, pkg)}Service`;
  const full = svc.fullName.slice(1);
  const methods = svc.methodsArray.map((m) => {
    const req = typeRef(m.resolvedRequestType, pkg, imports);
    const res = typeRef(m.resolvedResponseType, pkg, imports);
    const cs = Boolean(m.requestStream);
    const ss = Boolean(m.responseStream);
    return `    ${m.name}: method<${req}, ${res}, ${cs}, ${ss}>('${full}', '${m.name}', ${req}, ${res}, ${cs}, ${ss}),`;
  });
  return [`export const ${name} = {`, `  name: '${full}',`, '  methods: {', ...methods, '  },', '} as const;', `export type ${name} = typeof ${name};`].join('\n');
}

function emitModule(pkg, objects) {
  const imports = new Set();
  // Services last: they reference the message codecs, which must exist first.
  const ordered = [...objects].sort((a, b) => Number(a instanceof protobuf.Service) - Number(b instanceof protobuf.Service));
  const body = ordered.map((obj) => {
    if (obj instanceof protobuf.Type) return emitMessage(obj, pkg, imports);
    if (obj instanceof protobuf.Enum) return emitEnum(obj, pkg);
    return emitService(obj, pkg, imports);
  });
  const usesLong = body.some((b) => b.includes('Long'));
  const head = [
    '// Generated by tools/gen-proto.mjs from proto/. Do not edit.',
    '/* eslint-disable */',
    "import { codec, method } from '../codec.js';",
    "import type { MessageCodec } from '../service.js';",
    usesLong ? "import type Long from 'long';" : '',
    ...[...imports].sort().map((other) => `import * as ${alias(other)} from './${moduleName(other)}.js';`),
  ].filter(Boolean);
  return `${head.join('\n')}\n\n${body.join('\n\n')}\n`;
}

function main() {
  const root = loadRoot();
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const byPackage = collect(root);
  for (const [pkg, objects] of byPackage) writeFileSync(join(outDir, `${moduleName(pkg)}.ts`), emitModule(pkg, objects));
  const descriptor = JSON.stringify(root.toJSON({ keepComments: false }));
  writeFileSync(join(outDir, 'descriptor.ts'), `// Generated by tools/gen-proto.mjs. Do not edit.\nexport const descriptor: Record<string, unknown> = ${descriptor};\n`);
  const packages = [...byPackage.keys()].sort();
  writeFileSync(join(outDir, 'packages.ts'), `// Generated by tools/gen-proto.mjs. Do not edit.\nexport const protoPackages = ${JSON.stringify(packages)} as const;\n`);
}

main();
