/**
 * `wfbuild enable` on memcached 1.6.18-1+deb12u1 (Debian 12's current version): the enablement
 * patch (corpus/apps/memcached/) added to the series, a +wfpatch1 changelog entry, the .debs
 * built by dpkg-buildpackage linked with libwfpatch; then the shipped binary, run on the host in
 * global mode (no kernel extension needed), is made to pass a barrier with no patch while
 * serving over loopback: every tracked thread must park and resume. The first run builds the
 * package (a minute or two on 2 shared cores); it is cached under $WFPATCH_CACHE/enable.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { cachedEnabledBuilds, enablePackage, type EnableResult } from '../pipeline/src/enable/index.ts';
import { cacheRoot, repoRoot } from '../pipeline/src/paths.ts';
import { UserError } from '../pipeline/src/cli/errors.ts';

const version = '1.6.18-1+deb12u1';
const wfbuild = join(repoRoot, 'pipeline/bin/wfbuild');
const wfpatchCtl = join(repoRoot, 'kpatch-fork/runtime/build/wfpatch-ctl');

let scratch: string;
let first: EnableResult;
let firstMs: number;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-enable-'));
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork/runtime')], { env: { MAKEFLAGS: '' } });
  const started = Date.now();
  first = await enablePackage({ package: `memcached=${version}` });
  firstMs = Date.now() - started;
}, 3_600_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function mainDeb(r: EnableResult): string {
  const deb = r.debs.find((d) => /\/memcached_[^/]+_amd64\.deb$/.test(d));
  if (!deb) throw new Error(`no memcached .deb among ${r.debs.join(', ')}`);
  return deb;
}

describe('wfbuild enable --package memcached', () => {
  it('builds memcached VERSION+wfpatch1 with the enablement patch in the series and the changelog entry', async () => {
    expect(first.version).toBe(`${version}+wfpatch1`);
    const deb = mainDeb(first);
    expect(deb.endsWith(`memcached_${version}+wfpatch1_amd64.deb`)).toBe(true);
    const fields = await execa('dpkg-deb', ['-f', deb, 'Package', 'Version']);
    expect(fields.stdout).toContain(`Version: ${version}+wfpatch1`);
    const listing = await execa('dpkg-deb', ['-c', deb]);
    expect(listing.stdout).toMatch(/\.\/usr\/bin\/memcached$/m);
    const series = await readFile(join(first.tree, 'debian/patches/series'), 'utf8');
    expect(series.trim().split('\n').at(-1)).toBe('wfpatch-enable.patch');
    const applied = await readFile(join(first.tree, '.pc/applied-patches'), 'utf8');
    expect(applied).toContain('wfpatch-enable.patch'); // still applied after dpkg-buildpackage
    const changelog = await execa('dpkg-parsechangelog', ['-l', join(first.tree, 'debian/changelog'), '-S', 'Version']);
    expect(changelog.stdout.trim()).toBe(`${version}+wfpatch1`);
  });

  it('links libwfpatch into the binary (wf_init), statically, through the compiler wrapper', async () => {
    const symbols = await execa('nm', [join(first.tree, 'memcached')]);
    expect(symbols.stdout).toMatch(/ T wf_init$/m);
    expect(symbols.stdout).toMatch(/ T wf_global_quiescence$/m);
    const dynamic = await execa('readelf', ['-d', join(first.tree, 'memcached')]);
    expect(dynamic.stdout).not.toContain('libwfpatch.so');
    const log = await readFile(join(first.dir, 'build-log.jsonl'), 'utf8');
    expect(log).toContain('-ffunction-sections');
    expect(log).toMatch(/libwfpatch\.a/);
  });

  it('a second call is a cache hit; --out copies the .debs (through the CLI)', async () => {
    const out = join(scratch, 'out');
    const started = Date.now();
    const r = await execa(wfbuild, ['enable', '--package', `memcached=${version}`, '--out', out, '--json'], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const second = JSON.parse(r.stdout) as EnableResult;
    expect(second.cached).toBe(true);
    expect(second.dir).toBe(first.dir);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect((await readdir(out)).sort()).toEqual(first.debs.map((d) => d.slice(d.lastIndexOf('/') + 1)).sort());
    console.log(`enable: first call ${(firstMs / 1000).toFixed(0)} s (${first.cached ? 'cached' : `dpkg-buildpackage ${(first.buildMs / 1000).toFixed(0)} s`}), second ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  it('bad input: clear error, exit 2, nothing written', async () => {
    const before = await cachedEnabledBuilds();
    const unknown = await execa(wfbuild, ['enable', '--package', 'no-such-app=1.0-1'], { reject: false });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/no enablement patch for no-such-app/);
    const noVersion = await execa(wfbuild, ['enable', '--package', 'memcached'], { reject: false });
    expect(noVersion.exitCode).toBe(2);
    expect(noVersion.stderr).toMatch(/exact version/);
    const badVersion = await execa(wfbuild, ['enable', '--package', 'memcached=0.0.1-1'], { reject: false });
    expect(badVersion.exitCode).toBe(2);
    expect(badVersion.stderr).toMatch(/no such source package or version/);
    // An enablement patch that does not apply (another folder of apps, same package).
    const apps = join(scratch, 'apps');
    await mkdir(join(apps, 'memcached'), { recursive: true });
    const good = await readFile(join(repoRoot, 'corpus/apps/memcached/wfpatch-enable.patch'), 'utf8');
    await writeFile(join(apps, 'memcached/wfpatch-enable.patch'), good.replace('     while (do_run_maintenance_thread) {', '     while (do_run_maintenance_thread_renamed) {'));
    const error = await enablePackage({ package: `memcached=${version}`, appsDir: apps }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(2);
    expect((error as UserError).message).toMatch(/wfpatch-enable\.patch does not apply to memcached .*\n[^]*assoc\.c/);
    expect(await cachedEnabledBuilds()).toEqual(before);
    const leftovers = (await readdir(join(cacheRoot, 'enable'))).filter((n) => n.includes('.tmp-') || n.endsWith('.lock'));
    expect(leftovers).toEqual([]);
  });
});

describe('wfbuild enable --without, and wfbuild PATCH --enabled (a fix from the series, live-patched onto the build without it)', () => {
  const base = '1.6.18-1';
  const fix = '0007-uninitialized-variables.patch';

  it('--without 0007: its own cache entry and version, the series without it, the rest and the enablement applied', async () => {
    const without = await enablePackage({ package: `memcached=${base}`, without: ['0007-uninitialized-variables'] });
    const whole = await enablePackage({ package: `memcached=${base}` });
    expect(without.version).toBe(`${base}+wfpatch1~without.0007`);
    expect(without.without).toEqual([fix]);
    expect(without.dir).not.toBe(whole.dir);
    expect(mainDeb(without).endsWith(`memcached_${base}+wfpatch1~without.0007_amd64.deb`)).toBe(true);
    const series = (await readFile(join(without.tree, 'debian/patches/series'), 'utf8')).trim().split('\n');
    expect(series).not.toContain(fix);
    expect(series).toContain('0006-restore-systemd-sandboxing.patch');
    expect(series.at(-1)).toBe('wfpatch-enable.patch');
    const applied = (await readFile(join(without.tree, '.pc/applied-patches'), 'utf8')).trim().split('\n');
    expect(applied).toEqual(series);
    // The code is the series without 0007: its hunk (an initialized variable in logger.c) is absent here, present in the whole build.
    const fixText = await readFile(join(whole.tree, 'debian/patches', fix), 'utf8');
    const added = fixText.split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+++') && l.trim().length > 3).map((l) => l.slice(1));
    expect(added.length).toBeGreaterThan(0);
    const loggerWithout = await readFile(join(without.tree, 'logger.c'), 'utf8');
    const loggerWhole = await readFile(join(whole.tree, 'logger.c'), 'utf8');
    expect(added.every((l) => loggerWhole.includes(l))).toBe(true);
    expect(added.some((l) => !loggerWithout.includes(l))).toBe(true);
    expect(without.shipped).toEqual({ memcached: '/usr/bin/memcached' });
  }, 3_600_000);

  it('--without a patch that is not in the series: exit 2, named, nothing written', async () => {
    const before = await cachedEnabledBuilds();
    const r = await execa(wfbuild, ['enable', '--package', `memcached=${base}`, '--without', '0042-no-such-fix'], { reject: false });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/has no 0042-no-such-fix\.patch in debian\/patches\/series/);
    expect(await cachedEnabledBuilds()).toEqual(before);
  }, 600_000);

  it('wfbuild 0007 --package memcached=1.6.18-1 --enabled: the bundle targets the build-id of /usr/bin/memcached in the .deb built without 0007', async () => {
    const out = join(scratch, 'enabled-0007');
    const patch = join(scratch, fix);
    const without = await enablePackage({ package: `memcached=${base}`, without: [fix] });
    // The fix itself, as Debian ships it (the tree without it still carries the file in debian/patches).
    await writeFile(patch, await readFile(join(without.tree, 'debian/patches', fix)));
    const r = await execa(wfbuild, ['build', patch, '--package', `memcached=${base}`, '--enabled', '--out', out, '--json'], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { outcome: string; bundles: Array<{ file: string; buildId: string; installedPath: string | null; originalPath: string }>; notes: string[] };
    expect(report.outcome).toBe('kpatchable');
    const bundle = report.bundles[0]!;
    expect(bundle.installedPath).toBe('/usr/bin/memcached');
    expect(bundle.originalPath.startsWith(without.dir)).toBe(true); // the enabled build was the original, not a build of its own
    const unpacked = join(scratch, 'deb-without');
    await execa('dpkg-deb', ['-x', mainDeb(without), unpacked]);
    const shipped = await execa('readelf', ['-n', join(unpacked, 'usr/bin/memcached')]);
    expect(shipped.stdout).toContain(`Build ID: ${bundle.buildId}`);
    // The bundle names that build-id as its target (.wfpatch.target, checked by the runtime before loading).
    const metaFile = join(scratch, 'wfpatch.meta');
    await execa('objcopy', ['--dump-section', `.wfpatch.meta=${metaFile}`, join(out, bundle.file), join(scratch, 'bundle-copy.o')]);
    expect(await readFile(metaFile, 'utf8')).toContain(bundle.buildId);
    // And not the whole series' build (0007 in it): a bundle for it would be refused.
    const whole = await enablePackage({ package: `memcached=${base}` });
    const other = await execa('readelf', ['-n', join(whole.tree, 'memcached')]);
    expect(other.stdout).not.toContain(`Build ID: ${bundle.buildId}`);
  }, 3_600_000);
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** One request on its own connection (memcached hands connections to workers round-robin). */
async function request(port: number, text: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${JSON.stringify(text)} (got ${JSON.stringify(data)})`));
    }, 5000);
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (until.test(data)) {
        clearTimeout(timer);
        socket.end();
        resolve(data);
      }
    });
  });
}

interface LogEvent {
  event: string;
  seq?: number;
  thread?: string;
  tid?: number;
  outcome?: string;
}

async function readLog(path: string): Promise<LogEvent[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogEvent);
}

async function threadsByName(pid: number): Promise<Map<number, string>> {
  const tids = await readdir(`/proc/${pid}/task`);
  const names = new Map<number, string>();
  for (const tid of tids) names.set(Number(tid), (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trim());
  return names;
}

describe('the enabled memcached, from its .deb, on the host (global mode)', () => {
  let server: ResultPromise | undefined;
  let port = 0;

  afterAll(async () => {
    server?.kill('SIGKILL');
    await server?.catch(() => {});
  });

  it('serves, parks every tracked thread at a barrier with no patch, resumes and still answers', async () => {
    const root = join(scratch, 'root');
    await execa('dpkg-deb', ['-x', mainDeb(first), root]);
    const log = join(scratch, 'wf.log');
    port = await freePort();
    server = execa(join(root, 'usr/bin/memcached'), ['-u', 'root', '-l', '127.0.0.1', '-p', String(port), '-U', '0', '-t', '4'], {
      env: { WF_GLOBAL: '1', WF_LOGFILE: log, WF_GLOBAL_TIMEOUT: '5' },
      reject: false,
    });
    const pid = server.pid!;
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      ready = await request(port, 'version\r\n', /\r\n$/).then(() => true, () => false);
      if (!ready) await sleep(100);
    }
    expect(ready).toBe(true);
    expect(await request(port, 'set wf 0 0 5\r\nhello\r\n', /STORED\r\n$/)).toBe('STORED\r\n');

    const names = await threadsByName(pid);
    const workers = [...names].filter(([, n]) => n === 'mc-worker').map(([tid]) => tid).sort();
    expect(workers).toHaveLength(4);

    const ctl = await execa(wfpatchCtl, [String(pid), 'next'], { reject: false, timeout: 30_000 });
    expect(ctl.exitCode, ctl.stdout + ctl.stderr).toBe(0);
    const events = await readLog(log);
    // The round: from its trigger to its done (per-thread events carry no seq).
    const start = events.findIndex((e) => e.event === 'trigger' && e.seq === 1);
    const end = events.findIndex((e) => e.event === 'done' && e.seq === 1);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    const round = events.slice(start, end + 1);
    expect(round.map((e) => e.event)).not.toContain('quiescence_timeout');
    expect(round.find((e) => e.event === 'summary')?.outcome).toBe('applied');
    expect(round.at(-1)?.event).toBe('done');
    const arrived = round.filter((e) => e.event === 'arrived');
    // Idle workers sit in epoll_wait: only the kick (their notify eventfd) brings them to their point.
    expect(arrived.filter((e) => e.thread === 'worker').map((e) => e.tid).sort()).toEqual(workers);
    expect(arrived.filter((e) => e.thread === 'listener').map((e) => e.tid)).toEqual([pid]);
    // Every thread that arrived is one of memcached's own (not the patcher).
    for (const e of arrived) expect(names.get(e.tid!), `tid ${e.tid}`).toMatch(/^(mc-|memcached$)/);

    // Resumed: every worker answers (8 connections, round-robin over 4 workers).
    for (let i = 0; i < 8; i++) {
      expect(await request(port, 'get wf\r\n', /END\r\n$/)).toBe('VALUE wf 0 5\r\nhello\r\nEND\r\n');
    }
  }, 120_000);

  it('passes 30 more barriers under a client load, every one applied, the background threads joining when awake', async () => {
    const pid = server!.pid!;
    const log = join(scratch, 'wf.log');
    let stop = false;
    let answered = 0;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        await request(port, `set k${i % 100} 0 0 1\r\nx\r\nget k${i % 100}\r\n`, /END\r\n$/);
        answered++;
      }
    })();
    for (let i = 0; i < 30; i++) {
      const ctl = await execa(wfpatchCtl, [String(pid), 'next'], { reject: false, timeout: 30_000 });
      expect(ctl.exitCode, ctl.stdout + ctl.stderr).toBe(0);
      await sleep(20);
    }
    stop = true;
    await load;
    expect(answered).toBeGreaterThan(0);
    const events = await readLog(log);
    expect(events.filter((e) => e.event === 'done')).toHaveLength(31);
    expect(events.filter((e) => e.event === 'quiescence_timeout' || e.event === 'rejected')).toEqual([]);
    expect(events.filter((e) => e.event === 'summary').every((e) => e.outcome === 'applied')).toBe(true);
    expect(await request(port, 'get wf\r\n', /END\r\n$/)).toBe('VALUE wf 0 5\r\nhello\r\nEND\r\n');
  }, 120_000);
});
