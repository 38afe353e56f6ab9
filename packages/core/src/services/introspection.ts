/** Introspection: the plugins this daemon runs, and its stable server uuid. */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { introspection, parseFilters, fieldsAdaptor, type Init, type ServiceImplementation } from '@boxd/api';

export interface PluginStatus {
  type: string;
  id: string;
  requires?: string[];
  exports?: Record<string, string>;
  capabilities?: string[];
  /** Set when the plugin failed to start or is down. */
  error?: string;
}

const PLATFORM = { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch, variant: '' };

function serverUuid(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    const id = randomUUID();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, id);
    return id;
  }
}

export function introspectionService(plugins: () => PluginStatus[], uuidFile: string): ServiceImplementation<typeof introspection.IntrospectionService> {
  const uuid = serverUuid(uuidFile);
  return {
    Plugins: (req) => {
      const filter = parseFilters(req.filters);
      const out: Init<introspection.Plugin>[] = [];
      for (const p of plugins()) {
        const platforms = p.type.includes('snapshotter') || p.type.includes('runtime') ? [PLATFORM] : [];
        const adaptor = fieldsAdaptor({ type: p.type, id: p.id, platforms: platforms.map((x) => `${x.os}/${x.architecture}`).join(','), capabilities: (p.capabilities ?? []).join(',') });
        if (!filter.match(adaptor)) continue;
        out.push({
          type: p.type,
          id: p.id,
          requires: p.requires ?? [],
          platforms,
          exports: p.exports ?? {},
          capabilities: p.capabilities ?? [],
          initErr: p.error ? { code: 14, message: p.error } : null,
        });
      }
      return { plugins: out };
    },
    Server: () => ({ uuid }),
  };
}
