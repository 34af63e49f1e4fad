/**
 * Issue #16: the patched build re-runs the original's make steps (not configure), only what the
 * patch's files reach counts as changed, and what differs for other reasons is named as ignored
 * in report.json — on test/fixtures/rebuild, a small tree whose build regenerates a random build
 * id, stamps __DATE__/__TIME__, throws a compiler probe's object away, rewrites config.h in its
 * configure, and moves the linked binary away after linking.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Report } from '../pipeline/src/report/types.ts';
import { readMakeRecords, replayEnv } from '../pipeline/src/wrapper/make-records.ts';
import { linkMap, parseInvocation, type BuildLogEntry } from '../pipeline/src/wrapper/index.ts';
import { holdsUnit } from '../pipeline/src/stages/members.ts';
import { bundleFileNames } from '../pipeline/src/stages/bundle.ts';
import { overridesAutoInstall } from '../pipeline/src/stages/original-build.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
const fixture = new URL('./fixtures/rebuild/', import.meta.url).pathname;
const tree = join(fixture, 'tree');
const patch = join(fixture, 'patches/0001-handler-negative-code.patch');
// The whole command configure + make, as a package's would be: configure rewrites config.h,
// which every object depends on.
const buildCmd = './configure && make -j2';

let scratch: string;
let report: Report;
let exitCode: number | undefined;
let output: string;

/** `wfbuild build PATCH --source TREE [--build-cmd CMD] --out scratch/OUT` as a user runs it, in the scratch cache. */
async function runBuild(patchFile: string, source: string, outName: string, command?: string): Promise<{ code: number | undefined; out: string; rep: Report }> {
  const dir = join(scratch, outName);
  const result = await execa(wfbuild, ['build', patchFile, '--source', source, ...(command ? ['--build-cmd', command] : []), '--out', dir], {
    reject: false,
    env: { WFPATCH_CACHE: join(scratch, 'cache') },
    all: true,
  });
  return { code: result.exitCode, out: result.all ?? '', rep: JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as Report };
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-rebuild-'));
  ({ code: exitCode, out: output, rep: report } = await runBuild(patch, tree, 'out', buildCmd));
}, 120_000);
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('wfbuild on a build with noise (test/fixtures/rebuild)', () => {
  it('classifies the one-line fix as kpatch-able, with handler.o the only changed object', () => {
    expect(exitCode, output).toBe(0);
    expect(report).toMatchObject({ outcome: 'kpatchable', textOnly: true, reasons: [] });
    expect(report.objects.map((o) => o.object)).toEqual(['handler.o']);
  });

  it('re-runs the recorded make, not configure: only the patched file and what the build forces are recompiled', () => {
    expect(report.patchedBuild?.how, report.patchedBuild?.how).toMatch(/re-ran the original build's make\/ninja invocation\(s\): `make -j2` in \./);
    // handler.o (the patch), and what the Makefile rebuilds on every run: buildinfo.o (new
    // build id), stamp.o (FORCE), probe.o (the probe). Not main.o, util.o: configure did not
    // run again, so config.h kept its time.
    expect(report.patchedBuild?.recompiled).toBe(4);
    expect(report.patchedBuild?.changed).toBe(1);
    expect(report.notes.join('\n')).not.toMatch(/main\.o|util\.o/);
  });

  it('names the random build id object as ignored noise, not as changed', () => {
    expect(report.ignored).toContainEqual(expect.objectContaining({ object: 'buildinfo.o', source: 'buildinfo.c', why: 'noise' }));
    const noise = report.ignored.find((i) => i.object === 'buildinfo.o');
    expect(noise?.what).toMatch(/none of the \d+ files it is compiled from is one the patch touches/);
  });

  it('keeps __DATE__/__TIME__ from changing an object (SOURCE_DATE_EPOCH)', () => {
    expect(report.notes).toContain('stamp.o: recompiled, identical bytes');
    expect(report.objects.map((o) => o.object)).not.toContain('stamp.o');
  });

  it('ignores the compiler probe object, linked into nothing, with the reason', () => {
    expect(report.ignored).toContainEqual(expect.objectContaining({ object: 'probe.o', why: 'unlinked' }));
    expect(report.ignored.find((i) => i.object === 'probe.o')?.what).toMatch(/deleted by the build .*no recorded link or archive uses it/);
    expect(report.reasons.filter((r) => r.kind === 'unmapped')).toEqual([]);
  });

  it('checks objects against the binary as linked, although the build moved it away afterwards', () => {
    const handler = report.objects[0];
    expect(handler.binaries).toEqual(['server']);
    expect(handler.verdicts).toEqual([expect.objectContaining({ binary: 'server', outcome: 'patch', exitCode: 0 })]);
    expect(report.bundles).toHaveLength(1);
    expect(report.bundles[0]).toMatchObject({ binary: 'server', objects: ['handler.o'] });
    expect(report.bundles[0].originalPath).toMatch(/\/linked\/server$/);
    expect(report.bundles[0].buildId).toMatch(/^[0-9a-f]{40}$/);
  });
});

describe('recorded make invocations (make-records.ts)', () => {
  it('keeps build steps in start order and leaves probes out', async () => {
    const dir = join(scratch, 'makes');
    const records = join(dir, 'records');
    const root = join(dir, 'tree');
    await mkdir(records, { recursive: true });
    await mkdir(join(root, 'sub'), { recursive: true });
    await writeFile(join(root, 'Makefile'), 'all:\n');
    await writeFile(join(root, 'sub/GNUmakefile'), 'all:\n');
    const calls: [string, string[]][] = [
      [root, ['-j2']],
      [root, ['-Rrnpsf', 'debian/rules', 'debhelper-fail-me']], // dh looking for override targets
      [root, ['-f', 'conftest.make']], // autoconf's AC_PROG_MAKE_SET
      [root, ['-f', '-', 'BAR=0']], // automake's nested-variables check
      [root, ['-f', 'confmf.GNU']], // a configure's temporary makefile, deleted since
      [root, ['--version']],
      ['/elsewhere', ['all']], // outside the tree
      [join(root, 'sub'), ['all']],
    ];
    let n = 0;
    for (const [cwd, args] of calls) {
      const name = join(records, `m.${String(n++).padStart(4, '0')}`);
      await writeFile(name, [cwd, 'make', ...args].map((f) => `${f}\0`).join(''));
      await writeFile(`${name}.env`, `PATH=/old/shims:/usr/bin\0MAKEFLAGS= -j2 --jobserver-auth=3,4\0WFBUILD_IN_MAKE=1\0`);
      // Start order is the records' time order.
      await new Promise((r) => setTimeout(r, 5));
    }
    // The shim's record of a make, whose mktemp name happens to begin with a p: an ordinary
    // outermost make (it has no .outputs file, and is kept).
    {
      const name = join(records, 'm.pQx3kd8aZ1');
      await writeFile(name, [root, 'make', 'from-the-shim'].map((f) => `${f}\0`).join(''));
      await writeFile(`${name}.env`, 'PATH=/usr/bin\0');
      await new Promise((r) => setTimeout(r, 5));
    }
    // Makes the compiler wrapper found through /proc: kept only when a compile under them left
    // an output in the tree (a configure step's make, whose probe objects are gone, is not).
    for (const [id, outputs] of [['p100-1', `${join(root, 'sub/kept.o')}\n`], ['p200-2', `${join(root, 'gone.o')}\n/tmp/elsewhere.o\n`], ['p300-3', null]] as const) {
      const name = join(records, `m.${id}`);
      await writeFile(name, [root, 'make', id].map((f) => `${f}\0`).join(''));
      await writeFile(`${name}.env`, 'PATH=/usr/bin\0');
      if (outputs !== null) await writeFile(`${name}.outputs`, outputs);
      await new Promise((r) => setTimeout(r, 5));
    }
    await writeFile(join(root, 'sub/kept.o'), '');
    const makes = await readMakeRecords(root, records);
    expect(makes.map((m) => [m.cwd, m.args])).toEqual([['.', ['-j2']], ['sub', ['all']], ['.', ['from-the-shim']], ['.', ['p100-1']]]);
    const env = replayEnv(makes[0], '/old/shims', { WFBUILD_LOG: '/new/records' }, '/new/shims');
    expect(env).toMatchObject({ PATH: '/new/shims:/usr/bin', MAKEFLAGS: ' -j2', WFBUILD_LOG: '/new/records' });
    expect(env.WFBUILD_IN_MAKE).toBeUndefined();
  });
});

describe('makes that built nothing (make-records.ts)', () => {
  // knot-resolver's debian/rules runs `dh_auto_build -- doc` (ninja doc: Sphinx, Doxygen) before
  // the build proper; the patched build re-ran it every time (118–352 s) for nothing it needs.
  it('marks an outermost make or ninja under which no compile, link or ar ran', async () => {
    const dir = join(scratch, 'idle-makes');
    const records = join(dir, 'records');
    const root = join(dir, 'tree');
    await mkdir(records, { recursive: true });
    await mkdir(join(root, 'obj'), { recursive: true });
    await writeFile(join(root, 'obj/build.ninja'), '');
    const steps: [string, string[] | null][] = [
      ['m.0001', ['ninja', '-j2', '-v', 'doc']], // nothing compiled under it
      ['m.0002', ['ninja', '-j2', '-v']],
      ['r.0003', null], // a compile under the second ninja
      ['m.0004', ['ninja', '-j2', '-v', 'tests']],
      ['r.0005', null],
    ];
    for (const [name, args] of steps) {
      await writeFile(join(records, name), [join(root, 'obj'), ...(args ?? ['gcc', '-c', 'x.c', '-o', 'x.o'])].map((f) => `${f}\0`).join(''));
      if (args) await writeFile(join(records, `${name}.env`), 'PATH=/usr/bin\0');
      await new Promise((r) => setTimeout(r, 5));
    }
    const makes = await readMakeRecords(root, records);
    expect(makes.map((m) => [m.args.join(' '), m.built])).toEqual([
      ['-j2 -v doc', false],
      ['-j2 -v', true],
      ['-j2 -v tests', true],
    ]);
  });
});

describe('archive members (members.ts)', () => {
  it('tells which units a binary pulled in from an archive', async () => {
    const dir = join(scratch, 'members');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'used.c'), 'int used(void) { return 1; }\n');
    await writeFile(join(dir, 'unused.c'), 'int unused(void) { return 2; }\n');
    await writeFile(join(dir, 'main.c'), 'int used(void);\nint main(void) { return used(); }\n');
    for (const unit of ['used', 'unused', 'main']) await execa('gcc', ['-O2', '-c', '-o', `${unit}.o`, `${unit}.c`], { cwd: dir });
    await execa('ar', ['rcs', 'libm1.a', 'used.o', 'unused.o'], { cwd: dir });
    await execa('gcc', ['-o', 'prog', 'main.o', '-L.', '-lm1'], { cwd: dir });
    expect(await holdsUnit(join(dir, 'prog'), 'sub/used.c')).toBe(true);
    expect(await holdsUnit(join(dir, 'prog'), 'unused.c')).toBe(false);
    expect(await holdsUnit(join(dir, 'prog'), 'start.S')).toBeNull();
    await execa('strip', ['-o', 'prog.stripped', 'prog'], { cwd: dir });
    expect(await holdsUnit(join(dir, 'prog.stripped'), 'unused.c')).toBeNull();
  });
});

/**
 * Builds without an outer make the shim sees: test/fixtures/rebuild-tools is a Debian tree
 * (dh, compat 13) whose main program is built by meson + ninja, and whose debian/rules builds a
 * second program with its own $(MAKE) (/usr/bin/make, past the shim) and installs it with its own
 * rule (not dh_auto_install). Before, both fell back to the whole `debian/rules build-arch`
 * (dh re-ran meson setup and every object was recompiled) and the second program counted as
 * not installed.
 */
describe('replaying ninja and debian/rules\' own $(MAKE) (test/fixtures/rebuild-tools)', () => {
  const tools = new URL('./fixtures/rebuild-tools/', import.meta.url).pathname;
  let toolsReport: Report;
  let toolsExit: number | undefined;
  let toolsOutput: string;

  beforeAll(async () => {
    ({ code: toolsExit, out: toolsOutput, rep: toolsReport } = await runBuild(join(tools, 'patches/0001-negative-code-and-parse-bound.patch'), join(tools, 'tree'), 'tools-out'));
  }, 300_000);

  it('re-runs the recorded ninja (in meson\'s build folder) and the make debian/rules ran, not the whole build command', () => {
    expect(toolsExit, toolsOutput).toBe(0);
    expect(toolsReport.buildCommand).toBe('debian/rules build-arch');
    expect(toolsReport.patchedBuild?.how).toBe("re-ran the original build's make/ninja invocation(s): `ninja -j2 -v` in obj-x86_64-linux-gnu; `make -C tools` in .");
  });

  it('recompiles only the two patched files (not main.c/util.c, which include the generated config.h)', () => {
    expect(toolsReport.patchedBuild, toolsReport.notes.join('\n')).toMatchObject({ recompiled: 2, changed: 2 });
    expect(toolsReport.objects.map((o) => o.object).sort()).toEqual(['obj-x86_64-linux-gnu/server.p/handler.c.o', 'tools/parse.o']);
    expect(toolsReport.notes.join('\n')).not.toMatch(/main\.c\.o|util\.c\.o|tool\.o/);
  });

  it('finds where the package installs each binary, also one installed by its own rule', () => {
    expect(toolsReport).toMatchObject({ outcome: 'kpatchable', textOnly: true, reasons: [] });
    const bundles = Object.fromEntries(toolsReport.bundles.map((b) => [b.binary, b.installedPath]));
    expect(bundles).toEqual({ 'obj-x86_64-linux-gnu/server': '/usr/bin/server', 'tools/tool': '/usr/bin/rebuild-tool' });
  });
});

/**
 * A fix that newly calls a function whose object sits in an archive the binary links but never
 * pulled in (test/fixtures/rebuild-archive; nfs-utils' cache.c calling replicas_lookup() of
 * fsloc.o in libexport.a, which rpc.mountd never linked). Before, create-diff-object said
 * "lookup_referral does not resolve in server" and the verdict was text-only, not kpatch-able
 * (exit 5) with no bundle; relinked, the fixed server would contain fsloc.o, so the patch
 * carries it.
 */
describe('a patch calling into an archive member the binary never linked (test/fixtures/rebuild-archive)', () => {
  const fx = new URL('./fixtures/rebuild-archive/', import.meta.url).pathname;
  let rep: Report;
  let code: number | undefined;
  let out: string;

  beforeAll(async () => {
    ({ code, out, rep } = await runBuild(join(fx, 'patches/0001-export-referral.patch'), join(fx, 'tree'), 'archive-out', 'make'));
  }, 120_000);

  it('the original server does not hold fsloc.c (the case being tested)', async () => {
    const server = (rep.objects[0]?.verdicts[0]?.verdict as { target?: { path?: string } } | null)?.target?.path ?? '';
    expect(server).toMatch(/\/linked\/server$/);
    expect(await holdsUnit(server, 'fsloc.c')).toBe(false);
    expect(await holdsUnit(server, 'cache.c')).toBe(true);
  });

  it('carries fsloc.o in the patch: kpatch-able, one bundle for server, nothing unresolved', () => {
    expect(code, out).toBe(0);
    expect(rep).toMatchObject({ outcome: 'kpatchable', textOnly: true, reasons: [] });
    expect(rep.objects.map((o) => o.object)).toEqual(['cache.o']);
    expect(rep.bundles.map((b) => [b.binary, b.objects])).toEqual([['server', ['cache.o']]]);
    expect(rep.notes.join('\n')).toMatch(/cache\.o: the patched code calls into archive member\(s\) server never linked — carried in its patch for server, their functions new: fsloc\.o \(defines lookup_referral\)/);
  });

  it('the carried functions are new functions of the patch, the changed one replaced', () => {
    expect(rep.objects[0]!.verdicts[0]!.carried).toEqual([{ object: 'fsloc.o', defines: ['lookup_referral'] }]);
    const verdict = rep.objects[0]!.verdicts[0]!.verdict as { unresolved: string[]; changedFunctions: { name: string }[]; newFunctions: { name: string }[] };
    expect(verdict.unresolved).toEqual([]);
    expect(verdict.changedFunctions.map((f) => f.name)).toEqual(['export_entry']);
    expect(verdict.newFunctions.map((f) => f.name).sort()).toEqual(expect.arrayContaining(['lookup_referral']));
    expect(verdict.newFunctions.map((f) => f.name).join(' ')).toMatch(/parse_method/);
  });
});

/**
 * A build that compiles copies of its tree (exim4: debian/rules copies the tree into
 * b-exim4-daemon-light and -heavy, whose build folders link ../src/*.c): the patch to src/proxy.c
 * reached no compiler, the patched build recompiled nothing, and exim4's PROXYv2 fix came out
 * "no-compiled-code". Now the copies are found and patched too.
 */
describe('a build that compiles copies of its tree (test/fixtures/rebuild-copies)', () => {
  const fx = new URL('./fixtures/rebuild-copies/', import.meta.url).pathname;
  let rep: Report;
  let code: number | undefined;
  let out: string;

  beforeAll(async () => {
    ({ code, out, rep } = await runBuild(join(fx, 'patches/0001-proxy-header-length.patch'), join(fx, 'tree'), 'copies-out', 'sh build.sh'));
  }, 120_000);

  it('patches both copies and recompiles their proxy.o; the heavy flavour, which compiles the check, is kpatch-able', () => {
    expect(code, out).toBe(0);
    expect(rep).toMatchObject({ outcome: 'kpatchable', textOnly: true, reasons: [] });
    expect(rep.notes.join('\n')).toMatch(/the build compiles copies of the tree: patched b-heavy\/src\/proxy\.c, b-light\/src\/proxy\.c as well/);
    expect(rep.notes.join('\n')).not.toMatch(/src\/proxy\.c: not compiled by this build/);
    expect(rep.patchedBuild?.recompiled).toBe(2);
  });

  it('one bundle, for the heavy server, replacing proxy_header_ok', () => {
    expect(rep.bundles.map((b) => [b.binary, b.objects])).toEqual([['b-heavy/build/server', ['b-heavy/build/proxy.o']]]);
    const heavy = rep.objects.find((o) => o.object === 'b-heavy/build/proxy.o');
    const verdict = heavy?.verdicts[0]?.verdict as { changedFunctions: { name: string }[] } | undefined;
    expect(verdict?.changedFunctions.map((f) => f.name)).toEqual(['proxy_header_ok']);
  });
});

/**
 * exim4 overrides dh_auto_install and installs from the copies it built; the upstream install
 * rule that dh_auto_install ran first built the never-built top-level tree (~200 s of a 350 s
 * wfbuild, 2.5x a plain build). A package that overrides it is not asked to run it.
 */
describe('which packages install through their own rule (original-build.ts)', () => {
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
  it('a dh package with override_dh_auto_install does; one without does not; a tree without dh does not', async () => {
    const tools = new URL('./fixtures/rebuild-tools/tree/', import.meta.url).pathname;
    expect(await overridesAutoInstall(tools, env)).toBe(true);
    const plain = await mkdtemp(join(tmpdir(), 'dh-plain-'));
    try {
      await mkdir(join(plain, 'debian'));
      await writeFile(join(plain, 'debian/rules'), '#!/usr/bin/make -f\n%:\n\tdh $@\n', { mode: 0o755 });
      await writeFile(join(plain, 'debian/changelog'), 'wfx (1.0-1) unstable; urgency=medium\n\n  * Test.\n\n -- wfpatch tests <tests@example.org>  Mon, 30 Nov 2026 12:00:00 +0000\n');
      await writeFile(join(plain, 'debian/control'), 'Source: wfx\nBuild-Depends: debhelper-compat (= 13)\n\nPackage: wfx\nArchitecture: any\nDescription: wfx\n wfx\n');
      expect(await overridesAutoInstall(plain, env)).toBe(false);
      await writeFile(join(plain, 'debian/rules'), '#!/usr/bin/make -f\n%:\n\tdh $@\noverride_dh_auto_install-arch:\n\ttrue\n', { mode: 0o755 });
      expect(await overridesAutoInstall(plain, env)).toBe(true);
      await rm(join(plain, 'debian'), { recursive: true });
      expect(await overridesAutoInstall(plain, env)).toBe(false);
    } finally {
      await rm(plain, { recursive: true, force: true });
    }
  });
});

describe('bundle file names (bundle.ts)', () => {
  // openssh builds ssh twice (debian/build-deb, debian/build-udeb): both bundles were written
  // as ssh.wfp, the second over the first.
  it('keeps a unique binary name, and names binaries sharing one by their path', () => {
    expect(Object.fromEntries(bundleFileNames(['debian/build-deb/ssh', 'debian/build-udeb/ssh', 'debian/build-deb/sshd']))).toEqual({
      'debian/build-deb/ssh': 'debian_build-deb_ssh.wfp',
      'debian/build-udeb/ssh': 'debian_build-udeb_ssh.wfp',
      'debian/build-deb/sshd': 'sshd.wfp',
    });
  });
});

/**
 * A fix that adds a function in one file and calls it from another (knot-resolver's
 * session_tcp_penalize(), new in session.c, called from io.c): the calling object alone has a
 * reference the binary cannot resolve, but the bundle defines it. Before: io.c's object was
 * "not patchable" (unresolved) and the verdict not-kpatchable.
 */
describe('a new function in one object called from another (test/fixtures/rebuild-archive, patch 0002)', () => {
  const fx = new URL('./fixtures/rebuild-archive/', import.meta.url).pathname;
  let rep: Report;
  let code: number | undefined;
  let out: string;

  beforeAll(async () => {
    ({ code, out, rep } = await runBuild(join(fx, 'patches/0002-new-function-in-another-file.patch'), join(fx, 'tree'), 'cross-out', 'make'));
  }, 120_000);

  it('is kpatch-able: one bundle for server with both objects', () => {
    expect(code, out).toBe(0);
    expect(rep).toMatchObject({ outcome: 'kpatchable', textOnly: true, reasons: [] });
    expect(rep.objects.map((o) => o.object).sort()).toEqual(['cache.o', 'xlog.o']);
    expect(rep.bundles.map((b) => [b.binary, [...b.objects].sort()])).toEqual([['server', ['cache.o', 'xlog.o']]]);
  });

  it('resolves the call within the bundle and says so', () => {
    expect(rep.notes).toContain("cache.o: calls xlog_level, new in another object's patch for server: resolved within the bundle");
    const cache = rep.objects.find((o) => o.object === 'cache.o')!.verdicts[0]!.verdict as { unresolved: string[]; references: { name: string; how: string }[] };
    expect(cache.unresolved).toEqual([]);
    expect(cache.references.find((r) => r.name === 'xlog_level')?.how).toMatch(/another patch object of the same bundle/);
    const xlog = rep.objects.find((o) => o.object === 'xlog.o')!.verdicts[0]!.verdict as { newFunctions: { name: string; binding: string }[] };
    expect(xlog.newFunctions).toContainEqual(expect.objectContaining({ name: 'xlog_level', binding: 'global' }));
  });
});

describe('-lNAME in the link map (wrapper/index.ts)', () => {
  // cups builds libcups.so.2 and libcups.a from the same objects; cupsd links -lcups, which the
  // linker takes as the shared library (through the libcups.so symbolic link no recorded link
  // wrote). The link map sent ipp.o into cupsd and the backends through libcups.a, and
  // create-diff-object then looked for ipp.c's locals in cupsd (which has its own ipp.c).
  const entries = (extra: string[]): BuildLogEntry[] =>
    [
      ['cups', 'gcc', ['-fPIC', '-c', 'ipp.c', '-o', 'ipp.o']],
      ['cups', 'gcc', ['-shared', '-o', 'libcups.so.2', '-Wl,-soname,libcups.so.2', 'ipp.o']],
      ['cups', 'ar', ['rcs', 'libcups.a', 'ipp.o']],
      ['scheduler', 'gcc', ['-c', 'main.c', '-o', 'main.o']],
      ['scheduler', 'gcc', ['-o', 'cupsd', 'main.o', '-L../cups', ...extra, '-lcups']],
    ].map(([cwd, tool, args]) => parseInvocation('/t', `/t/${cwd as string}`, tool as string, args as string[])!);

  it('takes the shared library for -lNAME, through its versioned file', () => {
    expect(linkMap(entries([])).get('cups/ipp.o')).toEqual(['cups/libcups.so.2']);
  });

  it('takes the archive in a static link', () => {
    expect(linkMap(entries(['-static'])).get('cups/ipp.o')).toEqual(['cups/libcups.so.2', 'scheduler/cupsd']);
    expect(linkMap(entries(['-Wl,-Bstatic'])).get('cups/ipp.o')).toEqual(['cups/libcups.so.2', 'scheduler/cupsd']);
  });
});
