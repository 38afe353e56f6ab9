import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Supervisor } from '../src/supervisor.js';

const dir = mkdtempSync('/tmp/bx-sup-');
const fixture = new URL('./fixtures/flaky-plugin.mjs', import.meta.url).pathname;
const logger = pino({ level: 'silent' });

describe('Supervisor', () => {
  it('restarts a crashing plugin with backoff until it stays up, then stops it', async () => {
    const counter = join(dir, 'lives');
    const sup = new Supervisor({ id: 'flaky', command: [fixture], env: { FLAKY_COUNTER: counter }, pidFile: join(dir, 'flaky.pid') }, { logger, minBackoffMs: 20 });
    const exits: unknown[] = [];
    sup.on('exit', (e) => exits.push(e));
    await sup.start();
    await new Promise((r) => setTimeout(r, 1000));
    expect(readFileSync(counter, 'utf8')).toBe('xxx');
    expect(sup.restarts).toBe(2);
    expect(exits).toEqual([{ code: 3, signal: null }, { code: 3, signal: null }]);
    expect(sup.running).toBe(true);
    expect(Number(readFileSync(join(dir, 'flaky.pid'), 'utf8'))).toBe(sup.pid);
    await sup.stop();
    expect(sup.running).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(sup.restarts).toBe(2);
  });

  it('fails start when the plugin exits before it is ready', async () => {
    const script = join(dir, 'dies.mjs');
    writeFileSync(script, 'process.exit(1)\n');
    const sup = new Supervisor({ id: 'dies', command: [script] }, { logger });
    await expect(sup.start()).rejects.toThrow(/exited before it was ready/);
    await sup.stop();
  });

  it('stops an orphan left by a previous core before starting', async () => {
    const counter = join(dir, 'orphan-lives');
    writeFileSync(counter, 'xx');
    const pidFile = join(dir, 'orphan.pid');
    // The plugin a killed core left behind: still running, its pid on file.
    const orphan = spawn(process.execPath, [fixture, '--ready-fd', '3'], { env: { ...process.env, FLAKY_COUNTER: counter }, stdio: ['ignore', 'ignore', 'ignore', 'pipe'], detached: true });
    await once(orphan.stdio[3]!, 'data');
    writeFileSync(pidFile, String(orphan.pid));
    const exited = once(orphan, 'exit');
    const sup = new Supervisor({ id: 'o', command: [fixture], env: { FLAKY_COUNTER: counter }, pidFile }, { logger });
    await sup.start();
    expect(await exited).toEqual([0, null]);
    expect(sup.pid).not.toBe(orphan.pid);
    expect(sup.running).toBe(true);
    await sup.stop();
  });
});
