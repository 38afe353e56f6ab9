import { describe, expect, it } from 'vitest';
import { parse } from 'smol-toml';
import { defaultConfigToml, parseConfig, DEFAULT_RUNTIMES } from '../src/config.js';
import { parseStartOutput, shimBinaryName } from '../src/runtime/shim-process.js';

describe('core config', () => {
  it('the default config starts every plugin as a supervised child', () => {
    const cfg = parseConfig(defaultConfigToml());
    expect(cfg.plugins.map((p) => [p.id, p.type, p.exec?.[0]])).toEqual([
      ['content', 'content', 'boxd-content-store'],
      ['events', 'events', 'boxd-events-bus'],
      ['overlayfs', 'snapshot', 'boxd-snapshotter-overlay'],
      ['native', 'snapshot', 'boxd-snapshotter-native'],
      ['diff', 'diff', 'boxd-diff'],
      ['metadata', 'metadata', 'boxd-metadata'],
    ]);
    expect(cfg.address).toBe('/run/boxd/boxd.sock');
    expect(cfg.snapshotters).toEqual({ overlayfs: 'overlayfs', native: 'native' });
    expect(parse(defaultConfigToml())).toHaveProperty('plugins.metadata.exec');
    // Each on demand, stopped after a minute of idleness.
    expect(cfg.plugins.map((p) => [p.id, p.start, p.idleExitMs, p.nodeArgs])).toEqual(
      cfg.plugins.map((p) => [p.id, 'demand', 60_000, p.id === 'events' ? ['--max-semi-space-size=1'] : []]),
    );
    // The same defaults apply without a config file.
    expect(parseConfig('').plugins.find((p) => p.id === 'events')?.nodeArgs).toEqual(['--max-semi-space-size=1']);
    expect(parse(defaultConfigToml())).toMatchObject({ plugins: { diff: { start: 'demand', idle_exit: '60s', node_args: [] } } });
  });

  it('reads start, idle_exit and node_args', () => {
    const cfg = parseConfig(
      `[plugins.metadata]\nstart = "boot"\nnode_args = ["--max-semi-space-size=1"]\n[plugins.diff]\nidle_exit = "500ms"\n[plugins.native]\nidle_exit = 90\n[plugins.extra]\ntype = "snapshot"\nexec = ["/opt/snap"]\n`,
    );
    const byId = Object.fromEntries(cfg.plugins.map((p) => [p.id, p]));
    expect(byId.metadata).toMatchObject({ start: 'boot', nodeArgs: ['--max-semi-space-size=1'] });
    expect(byId.diff).toMatchObject({ start: 'demand', idleExitMs: 500 });
    expect(byId.native.idleExitMs).toBe(90_000);
    // A plugin of one's own starts with the core unless it says otherwise.
    expect(byId.extra.start).toBe('boot');
    expect(() => parseConfig('[plugins.diff]\nstart = "lazy"\n')).toThrow(/plugins\.diff\.start must be "boot" or "demand"/);
    expect(() => parseConfig('[plugins.diff]\nidle_exit = "soon"\n')).toThrow(/plugins\.diff\.idle_exit must be a positive duration/);
    expect(() => parseConfig('[plugins.diff]\nidle_exit = 0\n')).toThrow(/positive duration/);
    expect(() => parseConfig('[plugins.diff]\nnode_args = "--x"\n')).toThrow(/plugins\.diff\.node_args must be a list of strings/);
    expect(() => parseConfig('[plugins.events]\naddress = "/x.sock"\nstart = "demand"\n')).toThrow(/apply to exec plugins only/);
  });

  it('a file changes the plugins it names and keeps the others', () => {
    const cfg = parseConfig(
      `root = "/r"\n[plugins.native]\ndisabled = true\n[plugins.content]\ntype = "content"\nin_process = true\n[plugins.events]\ntype = "events"\naddress = "/x.sock"\ntransport = "grpc"\n`,
      { state: '/s' },
    );
    expect(cfg.root).toBe('/r');
    expect(cfg.state).toBe('/s');
    expect(cfg.address).toBe('/s/boxd.sock');
    const byId = Object.fromEntries(cfg.plugins.map((p) => [p.id, p]));
    expect(byId.native.disabled).toBe(true);
    expect(cfg.snapshotters).toEqual({ overlayfs: 'overlayfs' });
    expect(byId.content).toMatchObject({ inProcess: true, package: '@boxd/content-store', exec: undefined });
    expect(byId.events).toMatchObject({ address: '/x.sock', transport: 'grpc', exec: undefined });
    expect(byId.metadata.exec).toEqual(['boxd-metadata']);
  });

  it("accepts upstream's proxy_plugins form", () => {
    const cfg = parseConfig(`[proxy_plugins.remote]\ntype = "snapshot"\naddress = "/run/remote.sock"\n`);
    const remote = cfg.plugins.find((p) => p.id === 'remote');
    expect(remote).toMatchObject({ type: 'snapshot', address: '/run/remote.sock', transport: 'grpc' });
    expect(cfg.snapshotters.remote).toBe('remote');
  });

  it('maps runtimes to shims, ours by default', () => {
    expect(parseConfig('').runtimes).toEqual(DEFAULT_RUNTIMES);
    const cfg = parseConfig(`[runtimes."io.containerd.runc.v2"]\nshim = "containerd-shim-runc-v2"\n`);
    expect(cfg.runtimes['io.containerd.runc.v2']).toBe('containerd-shim-runc-v2');
    expect(shimBinaryName('io.containerd.runc.v2', cfg.runtimes)).toBe('containerd-shim-runc-v2');
    expect(shimBinaryName('io.containerd.kata.v2', cfg.runtimes)).toBe('containerd-shim-kata-v2');
    expect(shimBinaryName('/opt/shim', {})).toBe('/opt/shim');
    expect(() => shimBinaryName('runc', {})).toThrow(/invalid runtime name/);
  });

  it('reads both forms of shim start output', () => {
    expect(parseStartOutput('unix:///run/containerd/s/abc')).toBe('unix:///run/containerd/s/abc');
    expect(parseStartOutput('{"version":2,"address":"unix:///x","protocol":"ttrpc"}')).toBe('unix:///x');
  });

  it('rejects bad configs with the path of the mistake', () => {
    expect(() => parseConfig('[plugins.x]\ntype = "bogus"\n')).toThrow(/plugins\.x\.type must be one of/);
    expect(() => parseConfig('[plugins.x]\ntype = "content"\nexec = ["a"]\naddress = "/b"\n')).toThrow(/only one of exec, address, in_process/);
    expect(() => parseConfig('[proxy_plugins.p]\ntype = "snapshot"\n')).toThrow(/proxy_plugins\.p\.address is required/);
    expect(() => parseConfig('[runtimes."a.b"]\n')).toThrow(/runtimes\."a\.b"\.shim is required/);
    expect(() => parseConfig('root = [')).toThrow(/not valid TOML/);
  });
});
