import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { existsSync } from 'node:fs';
import { stopOrphan, Supervisor } from '../src/supervisor.js';

const dir = mkdtempSync('/tmp/bx-sup-');
const fixture = new URL('./fixtures/flaky-plugin.mjs', import.meta.url).pathname;
const logger = pino({ level: 'silent' });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
    // A stopped plugin leaves no pid file behind.
    expect(existsSync(join(dir, 'flaky.pid'))).toBe(false);
  });

  it('runs a JS plugin with its node_args, and refuses them for an executable', async () => {
    const script = join(dir, 'args.mjs');
    const out = join(dir, 'args.out');
    writeFileSync(script, `import { writeFileSync, writeSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(out)}, JSON.stringify(process.execArgv));\nwriteSync(3, 'ready\\n');\nsetInterval(() => {}, 1000);\n`);
    const sup = new Supervisor({ id: 'args', command: [script], nodeArgs: ['--max-semi-space-size=1'] }, { logger });
    await sup.start();
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(['--max-semi-space-size=1']);
    await sup.stop();
    const exe = new Supervisor({ id: 'exe', command: ['/bin/true'], nodeArgs: ['--max-semi-space-size=1'] }, { logger });
    await expect(exe.start()).rejects.toThrow(/node_args need a JS plugin command/);
  });

  it('leaves a crashed plugin stopped when asked not to restart it; the next start runs it', async () => {
    const counter = join(dir, 'lazy-lives');
    let asked = 0;
    const sup = new Supervisor({ id: 'lazy', command: [fixture], env: { FLAKY_COUNTER: counter } }, { logger, minBackoffMs: 20, restartWhen: () => (asked++, false) });
    await sup.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(asked).toBe(1);
    expect(sup.running).toBe(false);
    expect(sup.restarts).toBe(0);
    await new Promise((r) => setTimeout(r, sup.backoffLeftMs));
    await sup.start();
    expect(sup.ready).toBe(true);
    await sup.stop();
  });

  it('fails start when the plugin exits before it is ready', async () => {
    const script = join(dir, 'dies.mjs');
    writeFileSync(script, 'process.exit(1)\n');
    const sup = new Supervisor({ id: 'dies', command: [script] }, { logger });
    await expect(sup.start()).rejects.toThrow(/exited before it was ready/);
    await sup.stop();
  });

  it('stops an orphan left by a previous core', async () => {
    const counter = join(dir, 'orphan-lives');
    writeFileSync(counter, 'xx');
    const pidFile = join(dir, 'orphan.pid');
    // The plugin a killed core left behind: still running, its pid on file.
    const orphan = spawn(process.execPath, [fixture, '--ready-fd', '3'], { env: { ...process.env, FLAKY_COUNTER: counter }, stdio: ['ignore', 'ignore', 'ignore', 'pipe'], detached: true });
    await once(orphan.stdio[3]!, 'data');
    writeFileSync(pidFile, String(orphan.pid));
    const exited = once(orphan, 'exit');
    await stopOrphan(pidFile, logger);
    expect(await exited).toEqual([0, null]);
    expect(existsSync(pidFile)).toBe(false);
    const sup = new Supervisor({ id: 'o', command: [fixture], env: { FLAKY_COUNTER: counter }, pidFile }, { logger });
    await sup.start();
    expect(sup.pid).not.toBe(orphan.pid);
    expect(sup.running).toBe(true);
    await sup.stop();
  });
});
