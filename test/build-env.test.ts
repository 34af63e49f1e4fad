/**
 * Issue #16: builds run in a clean environment, as sbuild gives one — the caller's compiler
 * flags, Python variables and PATH entries never reach the build — and report.json records the
 * command and the environment. Also the failure message's error lines (config.log snippets).
 * The smallc fixture (seconds to build) with a private cache.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Report } from '../pipeline/src/report/types.ts';
import { buildProcessEnv, cleanBuildEnv, debianPath } from '../pipeline/src/stages/build-env.ts';
import { tellingLines } from '../pipeline/src/stages/build-failure.ts';
import { chooseBuildCommand } from '../pipeline/src/stages/build-command.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
const smallc = new URL('./fixtures/smallc/', import.meta.url).pathname;
const tree = join(smallc, 'tree');
const textPatch = join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch');

let scratch: string;
let cache: string;
let oddBin: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-env-'));
  cache = join(scratch, 'cache');
  // A user-installed "python3" and "cc" first in the caller's PATH: the build must not see them.
  oddBin = join(scratch, 'odd-bin');
  await mkdir(oddBin);
  for (const name of ['python3', 'cc', 'gcc']) {
    await writeFile(join(oddBin, name), '#!/bin/sh\necho "caller\'s $0 ran" >&2\nexit 99\n');
    await chmod(join(oddBin, name), 0o755);
  }
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** The CLI with a caller environment full of things a build must not inherit. */
function runAsCaller(args: string[]) {
  return execa(wfbuild, args, {
    reject: false,
    all: true,
    env: {
      WFPATCH_CACHE: cache,
      PATH: `${oddBin}:${process.env.PATH}`,
      CFLAGS: '-O0 -DCALLER_CFLAGS',
      LDFLAGS: '-L/caller/lib',
      PYTHONPATH: '/caller/python',
      LD_LIBRARY_PATH: '/caller/lib',
      CC: 'clang',
    },
  });
}

describe('the build environment', () => {
  it('is Debian\'s PATH, a fixed locale and HOME, DEB_BUILD_OPTIONS; the wrapper\'s shim stays first', () => {
    const base = cleanBuildEnv({ DEB_BUILD_OPTIONS: 'nocheck' });
    expect(base).toMatchObject({ PATH: debianPath, HOME: '/nonexistent', LC_ALL: 'C.UTF-8', DEB_BUILD_OPTIONS: 'nocheck' });
    const env = buildProcessEnv(base, { PATH: '/shims:/caller/bin:/usr/bin', WFBUILD_REAL_PATH: '/caller/bin:/usr/bin', CC: 'gcc' });
    expect(env.PATH).toBe(`/shims:${debianPath}`);
    expect(env.WFBUILD_REAL_PATH).toBe(debianPath);
    expect(env.CC).toBe('gcc');
  });

  it('the caller\'s CFLAGS, PYTHONPATH, LD_LIBRARY_PATH and PATH entries do not reach the build; report.json records command and env', async () => {
    const envFile = join(scratch, 'build-env.txt');
    const cmd = `env > ${envFile} && make -j2`;
    const out = join(scratch, 'out-env');
    const result = await runAsCaller([textPatch, '--source', tree, '--build-cmd', cmd, '--out', out]);
    expect(result.exitCode, result.all).toBe(0);
    const seen = Object.fromEntries(
      (await readFile(envFile, 'utf8'))
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(seen.CFLAGS).toBeUndefined();
    expect(seen.LDFLAGS).toBeUndefined();
    expect(seen.PYTHONPATH).toBeUndefined();
    expect(seen.LD_LIBRARY_PATH).toBeUndefined();
    expect(seen.WFPATCH_CACHE).toBeUndefined();
    expect(seen.CC).toBe('gcc'); // the wrapper's, not the caller's clang
    expect(seen.PATH).not.toContain(oddBin);
    expect(seen.PATH.endsWith(`:${debianPath}`)).toBe(true);
    expect(seen.HOME).toBe('/nonexistent');
    expect(seen.LC_ALL).toBe('C.UTF-8');
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.buildCommand).toBe(cmd);
    expect(report.build?.argv).toEqual(['sh', '-c', cmd]);
    expect(report.build?.env).toMatchObject({ PATH: debianPath, HOME: '/nonexistent', LC_ALL: 'C.UTF-8', DEB_BUILD_OPTIONS: 'nocheck nostrip parallel=2' });
    expect(Object.keys(report.build?.env ?? {})).not.toContain('CFLAGS');
  });

  it('the default make build compiles without the caller\'s CFLAGS (the compiler calls recorded by the wrapper)', async () => {
    const result = await runAsCaller([textPatch, '--source', tree, '--out', join(scratch, 'out-default')]);
    expect(result.exitCode, result.all).toBe(0);
    const orig = join(cache, 'wfbuild/orig');
    const keys = (await readdir(orig)).filter((k) => !k.endsWith('.lock'));
    const logs = await Promise.all(keys.map((k) => readFile(join(orig, k, 'build-log.jsonl'), 'utf8').catch(() => '')));
    const all = logs.join('\n');
    expect(all).toContain('"-O2"');
    expect(all).not.toContain('CALLER_CFLAGS');
    expect(all).not.toContain('/caller/lib');
  });

  it('a Debian tree builds with debian/rules build-arch by default; --build-cmd still overrides', async () => {
    const debianTree = { dir: '/nowhere', package: null, debian: true };
    expect((await chooseBuildCommand(debianTree, undefined)).argv).toEqual(['debian/rules', 'build-arch']);
    expect((await chooseBuildCommand(debianTree, 'debian/rules build')).display).toBe('debian/rules build');
  });
});

describe('a failed build\'s message', () => {
  it('names configure\'s error from the output and config.log, not dh\'s wrapper line', () => {
    const output = [
      'checking for tcpd.h... no',
      'checking for libwrap... configure: error: *** libwrap missing',
      'dh_auto_configure: error: ./configure --build=x86_64-linux-gnu --prefix=/usr returned exit code 1',
      'make[1]: *** [debian/rules:40: override_dh_auto_configure] Error 25',
      'make: *** [debian/rules:20: build-arch] Error 2',
    ].join('\n');
    const configLog = [
      'configure:4242: checking for tcpd.h',
      'conftest.c:2:10: fatal error: tcpd.h: No such file or directory',
      'configure:4250: result: no',
      'configure:4301: error: *** libwrap missing',
      '#define _ALL_SOURCE 1',
      'configure: exit 1',
    ].join('\n');
    expect(tellingLines(output, [configLog])).toEqual(['configure: error: *** libwrap missing']);
    // configure's message alone (printed to stdout, earlier than the tail), with pkg-config's explanation after it.
    const pkg = 'configure: error: Package requirements (libestr >= 0.1.9) were not met:\n\nNo package \'libestr\' found\n';
    expect(tellingLines(pkg)[0]).toBe('configure: error: Package requirements (libestr >= 0.1.9) were not met:');
  });

  it('names a compiler error when there is no configure error; config.log\'s failed probes alone do not count', () => {
    const output = 'gcc -c -o x.o x.c\nx.c:3:1: error: expected \';\' before \'}\' token\nmake: *** [Makefile:5: x.o] Error 1';
    expect(tellingLines(output, ['conftest.c:2:10: fatal error: seccomp.h: No such file or directory'])).toEqual(["x.c:3:1: error: expected ';' before '}' token"]);
    expect(tellingLines("Can't exec \"meson\": No such file or directory at /usr/share/perl5/Debian/Debhelper/Dh_Lib.pm line 518.")).toHaveLength(1);
  });

  it('the CLI prints configure\'s error line and keeps the log where the message says', async () => {
    const failing = join(scratch, 'failing');
    await execa('cp', ['-a', tree, failing]);
    await writeFile(
      join(failing, 'configure'),
      '#!/bin/sh\necho "configure:17: error: *** libfoo missing" > config.log\necho "checking for libfoo... no"\necho "configure: error: *** libfoo missing"\nexit 1\n',
    );
    await chmod(join(failing, 'configure'), 0o755);
    const noisyTail = Array.from({ length: 40 }, (_, i) => `echo noise line ${i}`).join('; ');
    const result = await runAsCaller([textPatch, '--source', failing, '--build-cmd', `./configure || { ${noisyTail}; exit 1; }`, '--out', join(scratch, 'out-fail')]);
    expect(result.exitCode, result.all).toBe(12);
    expect(result.stderr).toContain('configure: error: *** libfoo missing');
    const logPath = /full log: (\S+)/.exec(result.stderr)?.[1];
    expect(logPath, result.stderr).toBeDefined();
    expect(logPath!.startsWith(join(cache, 'wfbuild/failed/'))).toBe(true);
    expect(await readFile(logPath!, 'utf8')).toContain('checking for libfoo... no');
  });
});
