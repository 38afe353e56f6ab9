import { describe, expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { parseDiffConfig } from '../src/config.js';

describe('diff config', () => {
  it('has defaults that need only a content address', () => {
    const config = parseDiffConfig({ content_address: '/run/c.sock' }, '/var/lib/boxd/diff');
    expect(config).toMatchObject({ contentAddress: '/run/c.sock', contentTransport: 'ttrpc', allowDevices: false, zstdPath: 'zstd', tmpDir: '/var/lib/boxd/diff/tmp', streamProcessors: [] });
    expect(config.workers).toBeGreaterThan(0);
    expect(config.staging).toEqual({ dir: '/var/lib/boxd/diff/staging', ttlMs: 300_000, maxBytes: 4 * 1024 ** 3 });
  });

  it('reads the staging settings; a ttl of 0 turns staging off', () => {
    const config = parseDiffConfig({ staging_dir: '/big/staging', staging_ttl_seconds: 0, staging_max_bytes: 1000 }, '/r');
    expect(config.staging).toEqual({ dir: '/big/staging', ttlMs: 0, maxBytes: 1000 });
  });

  it('reads stream processors as containerd writes them', () => {
    const config = parseDiffConfig(
      { stream_processors: { 'io.example.dec': { accepts: ['a/b+enc'], returns: 'a/b', path: '/bin/dec', args: ['-k'], env: ['K=1'] } } },
      '/r',
    );
    expect(config.streamProcessors).toEqual([{ id: 'io.example.dec', accepts: ['a/b+enc'], returns: 'a/b', path: '/bin/dec', args: ['-k'], env: ['K=1'] }]);
  });

  it('rejects bad values with INVALID_ARGUMENT', () => {
    for (const raw of [{ content_transport: 'http' }, { workers: -1 }, { staging_ttl_seconds: -1 }, { staging_max_bytes: '1G' }, { allow_devices: 'yes' }, { stream_processors: { x: { accepts: 'a' , returns: 'b', path: 'c' } } }, { stream_processors: { x: { accepts: [] } } }]) {
      expect(() => parseDiffConfig(raw, '/r')).toThrow(expect.objectContaining({ code: Code.INVALID_ARGUMENT }));
    }
  });
});
