import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, readFile, readdir, rm, access, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { installShims, linkMap, parseInvocation, readRecords, wrapperEnv, type BuildLogEntry } from '../pipeline/src/wrapper/index.ts';
import { readBundleMeta } from '../pipeline/src/bundle/index.ts';
import { explainReject } from '../pipeline/src/stages/apply-patch.ts';
import { classifyOutcome } from '../pipeline/src/stages/classify.ts';
import { blockedFor } from '../pipeline/src/stages/bundle.ts';
import { isLibtoolSymbolTable } from '../pipeline/src/stages/ignore.ts';
import { compareLayouts, parseLayouts } from '../pipeline/src/stages/layout.ts';
import type { Report } from '../pipeline/src/report/types.ts';
import { describeTree } from '../pipeline/src/stages/source.ts';
import { bindMountAvailable, chooseBuildCommand, runBuild } from '../pipeline/src/stages/build-command.ts';
import { originalBuildKey } from '../pipeline/src/stages/original-build.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
const smallc = new URL('./fixtures/smallc/', import.meta.url).pathname;
const tree = join(smallc, 'tree');

let scratch: string;
let cache: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-test-'));
  cache = join(scratch, 'cache');
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** Runs the CLI with a private cache, as a user would. */
function run(args: string[]) {
  return execa(wfbuild, args, { reject: false, env: { WFPATCH_CACHE: cache }, all: true });
}

describe('compiler invocation parsing', () => {
  const root = '/src/pkg';
  it('reads a compile: source, object (relative to the tree), flags', () => {
    const e = parseInvocation(root, '/src/pkg/lib', 'gcc', ['-DHAVE_CONFIG_H', '-I', '.', '-MT', 'x.o', '-MF', '.deps/x.Tpo', '-O2', '-c', '-o', 'x.o', '../src/x.c']);
    expect(e).toMatchObject({ kind: 'compile', cwd: 'lib', sources: ['src/x.c'], object: 'lib/x.o' });
  });
  it('defaults the object to the source base name in the current folder', () => {
    expect(parseInvocation(root, root, 'cc', ['-c', 'dir/y.c'])).toMatchObject({ object: 'y.o' });
  });
  it('reads a link: output, objects and archives, shared or not', () => {
    expect(parseInvocation(root, root, 'gcc', ['-shared', '-o', 'libz.so.1', 'a.o', 'b.o', 'libc.a', '-lm'])).toMatchObject({
      kind: 'link',
      output: 'libz.so.1',
      inputs: ['a.o', 'b.o', 'libc.a'],
      shared: true,
    });
  });
  it('reads ar adding members as a link into the archive, and ignores other ar operations', () => {
    expect(parseInvocation(root, '/src/pkg/lib', 'ar', ['--plugin', '/usr/lib/liblto_plugin.so', 'cru', '.libs/libconv.a', '.libs/a.o', 'b.o'])).toMatchObject({
      kind: 'link',
      output: 'lib/.libs/libconv.a',
      inputs: ['lib/.libs/a.o', 'lib/b.o'],
    });
    expect(parseInvocation(root, root, 'x86_64-linux-gnu-ar', ['t', 'libx.a'])).toBeNull();
  });
  it('ignores preprocessing, version queries and configure probes', () => {
    expect(parseInvocation(root, root, 'gcc', ['-E', 'x.c'])).toBeNull();
    expect(parseInvocation(root, root, 'gcc', ['--version'])).toBeNull();
    expect(parseInvocation(root, root, 'gcc', ['-c', '-o', 'conftest.o', 'conftest.c'])).toBeNull();
    expect(parseInvocation(root, root, 'gcc', ['-o', 'conftest', 'conftest.c'])).toBeNull();
  });
});

describe('build records of a tree reached through a symbolic link', () => {
  it('are relative to the tree whether the shell spelled its folder physically or through the link', async () => {
    const real = join(scratch, 'linked-real');
    const link = join(scratch, 'linked-tree');
    const records = join(scratch, 'linked-records');
    await mkdir(join(real, 'src'), { recursive: true });
    await mkdir(records, { recursive: true });
    await symlink(real, link);
    // What the wrapper writes: $PWD, the tool, its arguments, NUL-separated. Debian's dh
    // chdirs, so the shell below it spells $PWD physically; a plain make keeps the link.
    await writeFile(join(records, 'r.1'), `${join(real, 'src')}\0gcc\0-c\0-o\0a.o\0a.c\0`);
    await writeFile(join(records, 'r.2'), `${join(link, 'src')}\0gcc\0-c\0-o\0b.o\0b.c\0`);
    const entries = await readRecords(link, records);
    expect(entries.map((e) => [e.cwd, e.kind === 'compile' ? e.sources : [], e.kind === 'compile' ? e.object : ''])).toEqual(
      expect.arrayContaining([
        ['src', ['src/a.c'], 'src/a.o'],
        ['src', ['src/b.c'], 'src/b.o'],
      ]),
    );
    expect(entries).toHaveLength(2);
  });
});

describe('link map', () => {
  it('follows partial links to the final binaries and keeps objects linked twice', () => {
    const log: BuildLogEntry[] = [
      { kind: 'compile', cwd: '.', sources: ['a.c'], object: 'a.o', tool: 'gcc', args: [] },
      { kind: 'compile', cwd: '.', sources: ['b.c'], object: 'b.o', tool: 'gcc', args: [] },
      { kind: 'compile', cwd: '.', sources: ['t.c'], object: 't.o', tool: 'gcc', args: [] },
      { kind: 'link', cwd: '.', output: 'ab.o', inputs: ['a.o', 'b.o'], sources: [], shared: false, tool: 'gcc', args: ['-r'] },
      { kind: 'link', cwd: '.', output: 'prog', inputs: ['ab.o'], sources: [], shared: false, tool: 'gcc', args: [] },
      { kind: 'link', cwd: '.', output: 'libx.so', inputs: ['b.o'], sources: [], shared: true, tool: 'gcc', args: [] },
    ];
    log.push(
      { kind: 'compile', cwd: '.', sources: ['c.c'], object: 'lib/c.o', tool: 'gcc', args: [] },
      { kind: 'link', cwd: 'lib', output: 'lib/libc1.a', inputs: ['lib/c.o'], sources: [], shared: false, tool: 'ar', args: [] },
      // -Llib -lc1: found through the -L folder, as the archive this build made.
      { kind: 'link', cwd: '.', output: 'tool', inputs: ['t.o'], sources: [], libraryCandidates: ['lib/libc1.a', 'lib/libc1.so'], shared: false, tool: 'gcc', args: [] },
    );
    const map = linkMap(log);
    expect(map.get('lib/c.o')).toEqual(['tool']);
    expect(map.get('a.o')).toEqual(['prog']);
    expect(map.get('b.o')).toEqual(['libx.so', 'prog']);
    expect(map.get('t.o')).toEqual(['tool']);
  });
});

describe('compiler wrapper (real gcc)', () => {
  it('adds -ffunction-sections -fdata-sections, drops -flto, maps the tree path, records the call', async () => {
    const dir = join(scratch, 'wrap');
    const shims = join(dir, 'shims');
    const records = join(dir, 'records');
    await installShims(shims);
    await mkdir(records);
    await writeFile(join(dir, 'f.c'), 'int counter = 1;\nint f(int x) { return x + counter; }\nint g(void) { return 2; }\n');
    const env = wrapperEnv(shims, records, dir);
    await execa('gcc', ['-O2', '-fPIC', '-flto', '-g', '-c', '-o', 'f.o', 'f.c'], { cwd: dir, env, extendEnv: true });
    await execa('gcc', ['-shared', '-o', 'libf.so', 'f.o'], { cwd: dir, env });
    await execa('ar', ['rcs', 'libf.a', 'f.o'], { cwd: dir, env });
    const log = await readRecords(dir, records);
    expect(log).toHaveLength(3);
    const [compile, link, archive] = log;
    expect(archive).toMatchObject({ kind: 'link', tool: 'ar', output: 'libf.a', inputs: ['f.o'] });
    expect(archive.args).not.toContain('-ffunction-sections');
    expect(compile).toMatchObject({ kind: 'compile', sources: ['f.c'], object: 'f.o', tool: 'gcc' });
    expect(compile.args).toContain('-ffunction-sections');
    expect(compile.args).toContain('-fdata-sections');
    expect(compile.args).toContain(`-ffile-prefix-map=${dir}=.`);
    expect(compile.args).not.toContain('-flto');
    expect(link).toMatchObject({ kind: 'link', output: 'libf.so', inputs: ['f.o'], shared: true });
    const sections = (await execa('readelf', ['-SW', join(dir, 'f.o')])).stdout;
    expect(sections).toContain('.text.f');
    expect(sections).toContain('.text.g');
    expect(sections).toContain('.data.counter');
    expect(sections).not.toContain('.gnu.lto');
    // The debug info names the tree as ".", so a copy of the tree compiles to the same bytes.
    expect((await execa('readelf', ['--debug-dump=info', join(dir, 'f.o')])).stdout).not.toContain(dir);
  });

  it('passes the compiler exit status through and records nothing for a failed compile', async () => {
    const dir = join(scratch, 'wrapfail');
    await installShims(join(dir, 'shims'));
    await mkdir(join(dir, 'records'));
    await writeFile(join(dir, 'bad.c'), 'int f( {\n');
    const result = await execa('gcc', ['-c', 'bad.c'], { cwd: dir, env: wrapperEnv(join(dir, 'shims'), join(dir, 'records'), dir), reject: false });
    expect(result.exitCode).toBe(1);
    expect(await readdir(join(dir, 'records'))).toEqual([]);
  });
});

describe('classification rules', () => {
  const obj = (outcome: 'patch' | 'nothing' | 'not-text-only' | 'not-patchable' | 'error') => ({
    object: 'x.o', source: 'x.c', binaries: ['prog'], verdicts: [{ binary: 'prog', outcome, exitCode: 0, verdict: null }],
  });
  it.each([
    [[obj('patch')], [], 'kpatchable', true, true],
    [[obj('patch'), obj('not-text-only')], [], 'not-text-only', false, false],
    [[obj('patch'), obj('not-patchable')], [], 'not-kpatchable', true, false],
    [[obj('patch')], ['prog'], 'not-kpatchable', true, false],
    [[obj('nothing')], [], 'no-compiled-code', null, null],
    [[], [], 'no-compiled-code', null, null],
    [[obj('error')], [], 'not-kpatchable', null, false],
    [[obj('patch'), { ...obj('patch'), verdicts: [{ binary: '', outcome: 'unmapped' as const, exitCode: null, verdict: null }] }], [], 'not-kpatchable', null, false],
    [[{ ...obj('nothing'), layoutChanges: [{ type: 'struct s', what: 'size 8 → 16 bytes' }] }], [], 'not-text-only', false, false],
  ] as const)('%#: %j → %s', (objects, unbundled, outcome, textOnly, kpatchable) => {
    expect(classifyOutcome({ touchesCompiledCode: true, objects: [...objects], reasons: [], unbundled: [...unbundled] })).toEqual({ outcome, textOnly, kpatchable });
  });
});

describe('bundles per binary (stages/bundle.ts blockedFor)', () => {
  // exim4's dbfn.o goes into the daemon and into exim_dumpdb: the utility's patch cannot resolve
  // a symbol its link made local, the daemon's can. Only the utility is left without a bundle.
  const shared = {
    object: 'dbfn.o', source: 'dbfn.c', binaries: ['exim', 'exim_dumpdb'],
    verdicts: [
      { binary: 'exim', outcome: 'patch' as const, exitCode: 0, verdict: null },
      { binary: 'exim_dumpdb', outcome: 'not-patchable' as const, exitCode: 5, verdict: null },
    ],
  };
  it('blocks only the binary whose patch failed', () => {
    expect(blockedFor({ objects: [shared] }, 'exim')).toBe(false);
    expect(blockedFor({ objects: [shared] }, 'exim_dumpdb')).toBe(true);
  });
  it('a changed layout blocks every binary the object is in; an unmapped change blocks all', () => {
    const layout = { ...shared, verdicts: shared.verdicts.map((v) => ({ ...v, outcome: 'patch' as const })), layoutChanges: [{ type: 'struct s', what: 'size 8 → 16 bytes' }] };
    expect(blockedFor({ objects: [layout] }, 'exim')).toBe(true);
    expect(blockedFor({ objects: [layout] }, 'other')).toBe(false);
    const unmapped = { object: 'x.o', source: 'x.c', binaries: [], verdicts: [{ binary: '', outcome: 'unmapped' as const, exitCode: null, verdict: null }] };
    expect(blockedFor({ objects: [unmapped, { ...shared, verdicts: [shared.verdicts[0]!] }] }, 'exim')).toBe(true);
  });
});

describe("libtool's dlpreopen symbol table (stages/ignore.ts)", () => {
  // squid links with -dlopen self: every link writes src/.libs/squidS.c from the program's
  // symbols, compiles and links it, and deletes it; the original build keeps no such object.
  it('is recognised by its generated name only', () => {
    expect(isLibtoolSymbolTable('src/.libs/squidS.c')).toBe(true);
    expect(isLibtoolSymbolTable('.libs/lt-fooS.c')).toBe(true);
    expect(isLibtoolSymbolTable('src/squidS.c')).toBe(false);
    expect(isLibtoolSymbolTable('src/.libs/main.c')).toBe(false);
    expect(isLibtoolSymbolTable('src/.libs/sub/xS.cc')).toBe(false);
  });
});

describe('struct layouts (pahole output)', () => {
  const before = `struct p {
	int                        a;                    /*     0     4 */
	int                        vlen;                 /*     4     4 */
	union {
		int                u1;                   /*     8     4 */
		long int           u2;                   /*     8     8 */
	} u;                                             /*     8     8 */

	/* size: 16, cachelines: 1, members: 3 */
};
struct same {
	long int                   x;                    /*     0     8 */

	/* size: 8, cachelines: 1, members: 1 */
};
`;
  it('reads sizes and members, nested ones in the signature', () => {
    const layouts = parseLayouts(before);
    expect([...layouts.keys()]).toEqual(['struct p', 'struct same']);
    const p = layouts.get('struct p')!;
    expect(p.size).toBe(16);
    expect([...p.members]).toEqual([['a', [0, 4]], ['vlen', [4, 4]], ['u', [8, 8]]]);
  });
  it('reports moved, added and resized members, and ignores a renamed member type', () => {
    const after = `struct p {
\tint                        a;                    /*     0     4 */
\tint                        endlen;               /*     4     4 */
\tint                        vlen;                 /*     8     4 */
\tunion {
\t\tint                u1;                   /*    16     4 */
\t\tlong int           u2;                   /*    16     8 */
\t} u;                                             /*    16     8 */

\t/* size: 24, cachelines: 1, members: 4 */
};
struct same {
\tint64_t                    x;                    /*     0     8 */

\t/* size: 8, cachelines: 1, members: 1 */
};
`;
    const changes = compareLayouts(parseLayouts(before), parseLayouts(after));
    expect(changes).toEqual([{ type: 'struct p', what: 'size 16 → 24 bytes; member endlen added; vlen offset 4 → 8, u offset 8 → 16' }]);
  });
});

describe('patched build at the original path', () => {
  it('builds the copy bind-mounted over the original path, invisible outside', async () => {
    expect(await bindMountAvailable()).toBe(true); // root on Debian 12: the patched build relies on it
    const original = join(scratch, 'bind', 'original');
    const copy = join(scratch, 'bind', 'copy');
    await mkdir(original, { recursive: true });
    await mkdir(copy, { recursive: true });
    await writeFile(join(copy, 'marker'), 'copy\n');
    await runBuild({ display: 'probe', argv: ['sh', '-c', 'pwd > where.txt; cat marker >> where.txt'], env: {} }, copy, {}, 'probe', original);
    expect(await readFile(join(copy, 'where.txt'), 'utf8')).toBe(`${original}\ncopy\n`);
    expect(await readdir(original)).toEqual([]);
  });
});

describe('patch rejects', () => {
  it('names the file and the hunk', () => {
    const msg = explainReject('checking file greet.c\nHunk #1 FAILED at 7.\n1 out of 1 hunk FAILED\n', 'fix.patch');
    expect(msg).toContain('greet.c: hunk #1 (at line 7) does not apply');
  });
});

describe('wfbuild on the smallc fixture (integration: real make, gcc, create-diff-object, ld)', () => {
  const out = (name: string): string => join(scratch, 'out', name);

  it('text-only patch: kpatch-able, one bundle with .wfpatch.meta for the binary (exit 0)', async () => {
    const result = await run([join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch'), '--source', tree, '--out', out('text')]);
    expect(result.exitCode, result.all).toBe(0);
    const report = JSON.parse(await readFile(join(out('text'), 'report.json'), 'utf8')) as Report;
    expect(report).toMatchObject({ outcome: 'kpatchable', textOnly: true, kpatchable: true, cves: ['CVE-2099-0001'], reasons: [] });
    expect(report.objects.map((o) => o.object)).toEqual(['greet.o']);
    expect(report.objects[0].verdicts[0]).toMatchObject({ binary: 'smallc', outcome: 'patch', exitCode: 0 });
    expect(report.bundles).toHaveLength(1);
    const bundle = report.bundles[0];
    expect(bundle).toMatchObject({ binary: 'smallc', file: 'smallc.wfp', objects: ['greet.o'] });
    expect(Object.keys(report.timings)).toEqual(['triage', 'source', 'buildDeps', 'originalBuild', 'patchedBuild', 'diff', 'bundle']);
    const file = join(out('text'), 'smallc.wfp');
    const meta = await readBundleMeta(file, scratch);
    expect(meta).toEqual({ format: 1, patch: '0001-text-only-CVE-2099-0001.patch', sha256: report.patch.sha256, cves: ['CVE-2099-0001'], target: { path: 'smallc', buildId: bundle.buildId } });
    expect(bundle.buildId).toMatch(/^[0-9a-f]{40}$/);
    const sections = (await execa('readelf', ['-SW', file])).stdout;
    expect(sections).toContain('.wfpatch.funcs');
    expect(sections).toContain('.text.greet');
    expect((await execa('readelf', ['-h', file])).stdout).toMatch(/REL \(Relocatable file\)/);
    expect((await readdir(out('text'))).sort()).toEqual(['report.json', 'smallc.wfp']);
  });

  it('data patch: not text-only, with the object, symbol and what changed (exit 4), reusing the cached original build', async () => {
    const result = await run(['build', join(smallc, 'patches/0002-data-change.patch'), '--source', tree, '--out', out('data'), '--json']);
    expect(result.exitCode, result.all).toBe(4);
    const report = JSON.parse(result.stdout) as Report;
    expect(report).toMatchObject({ outcome: 'not-text-only', textOnly: false, kpatchable: false, bundles: [] });
    expect(report.originalBuild?.cached).toBe(true);
    expect(report.reasons).toContainEqual(expect.objectContaining({ object: 'table.o', kind: 'data', symbol: 'limits' }));
    expect(report.reasons[0].what).toMatch(/initializer changed/);
    expect(JSON.parse(await readFile(join(out('data'), 'report.json'), 'utf8'))).toEqual(report);
  });

  it('struct layout patch: not text-only even though create-diff-object patches the code (exit 4)', async () => {
    const result = await run([join(smallc, 'patches/0004-struct-layout.patch'), '--source', tree, '--out', out('layout'), '--json']);
    expect(result.exitCode, result.all).toBe(4);
    const report = JSON.parse(result.stdout) as Report;
    expect(report).toMatchObject({ outcome: 'not-text-only', textOnly: false, kpatchable: false, bundles: [] });
    // main.c and stats.c use struct stats; greet.c and table.c include the header but not the type.
    expect(report.objects.map((o) => o.object).sort()).toEqual(['main.o', 'stats.o']);
    expect(report.reasons).toContainEqual({
      object: 'stats.o',
      kind: 'layout',
      symbol: 'struct stats',
      what: 'data layout of struct stats changed: size 16 → 24 bytes; member errors added; bytes offset 8 → 16',
    });
    expect(report.notes).toContain('greet.o: recompiled, identical bytes');
  });

  it('docs-only patch: no compiled code changed, nothing built (exit 3)', async () => {
    const result = await run(['classify', join(smallc, 'patches/0003-docs-only.patch'), '--source', tree, '--out', out('docs')]);
    expect(result.exitCode, result.all).toBe(3);
    const report = JSON.parse(await readFile(join(out('docs'), 'report.json'), 'utf8')) as Report;
    expect(report).toMatchObject({ outcome: 'no-compiled-code', textOnly: null, kpatchable: null, originalBuild: null, objects: [] });
  });

  it('classify writes report.json but no bundle', async () => {
    const result = await run(['classify', join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch'), '--source', tree, '--out', out('classify')]);
    expect(result.exitCode, result.all).toBe(0);
    expect(await readdir(out('classify'))).toEqual(['report.json']);
    const report = JSON.parse(await readFile(join(out('classify'), 'report.json'), 'utf8')) as Report;
    expect(report.bundles[0]).toMatchObject({ binary: 'smallc', file: null });
  });

  it('report prints the table of several outputs', async () => {
    const result = await run(['report', out('text'), out('data'), join(out('docs'), 'report.json')]);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toMatch(/0001-text-only-CVE-2099-0001\.patch\s+-\s+CVE-2099-0001\s+kpatchable\s+yes\s+yes\s+1/);
    expect(result.stdout).toMatch(/0002-data-change\.patch.*not-text-only\s+no\s+no\s+0\s+table\.o: limits/);
    expect(result.stdout).toContain('3 patch(es): 2 change compiled code; text-only 1/2, kpatch-able 1/2');
    const bad = await run(['report', join(scratch, 'nowhere')]);
    expect(bad.exitCode).toBe(2);
  });
});

describe('bad input: clear error, non-zero exit, nothing written', () => {
  const cases: [string, string[], number, RegExp][] = [
    ['a patch that does not apply', [join(smallc, 'bad/does-not-apply.patch'), '--source', tree], 2, /greet\.c: hunk #1 \(at line 7\) does not apply/],
    ['a patch for another package', [join(smallc, 'bad/other-package.patch'), '--source', tree], 2, /do not exist in the tree \(src\/event\/ngx_event\.c\).*another package/],
    ['a binary file in the patch', [join(smallc, 'bad/binary-file.patch'), '--source', tree], 2, /binary diff for logo\.png/],
    ['not a patch', [join(smallc, 'bad/not-a-patch.patch'), '--source', tree], 2, /not a patch/],
    ['a tree with no build system', [join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch'), '--source', join(smallc, 'no-build-system')], 2, /no build system found/],
    ['a package that does not build', [join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch'), '--source', tree, '--build-cmd', 'make no-such-target'], 12, /original build .* failed \(make no-such-target, exit 2\)[\s\S]*No rule to make target/],
    ['an unknown package', [join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch'), '--package', 'no-such-package-wfpatch'], 2, /no such source package/],
    ['both --package and --source', [join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch'), '--package', 'memcached', '--source', tree], 2, /exactly one of/],
  ];
  it.each(cases)('%s', async (_what, args, code, message) => {
    const target = join(scratch, 'bad-out', _what.replace(/\W+/g, '-'));
    const result = await run([...args, '--out', target]);
    expect(result.exitCode, result.all).toBe(code);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(await exists(target)).toBe(false);
    expect(await exists(join(scratch, 'bad-out'))).toBe(false);
  });

  it('sweeps a killed run\'s work copy, output temp folder and build lock', async () => {
    const dead = 999_999; // beyond the pids in use here
    await mkdir(join(cache, 'wfbuild/work', `${dead}-0123456789ab/tree`), { recursive: true });
    const target = join(scratch, 'swept', 'docs');
    await mkdir(`${target}.tmp-${dead}`, { recursive: true });
    const source = await describeTree(tree);
    const { key } = await originalBuildKey(source, await chooseBuildCommand(source, undefined));
    await mkdir(join(cache, 'wfbuild/orig', `${key}.lock`), { recursive: true });
    await writeFile(join(cache, 'wfbuild/orig', `${key}.lock/pid`), String(dead));
    const result = await run([join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch'), '--source', tree, '--out', target]);
    expect(result.exitCode, result.all).toBe(0);
    expect(await exists(join(cache, 'wfbuild/work', `${dead}-0123456789ab`))).toBe(false);
    expect(await exists(`${target}.tmp-${dead}`)).toBe(false);
    expect(await exists(join(cache, 'wfbuild/orig', `${key}.lock`))).toBe(false);
    expect(await readdir(join(scratch, 'swept'))).toEqual(['docs']);
  });

  it('keys the original build by the tree\'s contents: a fresh copy hits, a changed byte or mode misses', async () => {
    const keyOf = async (dir: string) => {
      const source = await describeTree(dir);
      return (await originalBuildKey(source, await chooseBuildCommand(source, undefined))).key;
    };
    const copy = join(scratch, 'key-copy', 'tree');
    await mkdir(join(scratch, 'key-copy'), { recursive: true });
    // cp without -p: every mtime is new, as after a fresh fetch or clone.
    await execa('cp', ['-r', tree, copy]);
    expect(await keyOf(copy)).toBe(await keyOf(tree));
    const file = join(copy, 'greet.c');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/\n$/, ' \n'));
    const edited = await keyOf(copy);
    expect(edited).not.toBe(await keyOf(tree));
    await writeFile(file, text);
    expect(await keyOf(copy)).toBe(await keyOf(tree));
    await execa('chmod', ['+x', file]);
    expect(await keyOf(copy)).not.toBe(await keyOf(tree));
  });

  it('leaves no work copies or half-built original builds in the cache', async () => {
    expect(await readdir(join(cache, 'wfbuild/work')).catch(() => [])).toEqual([]);
    for (const key of await readdir(join(cache, 'wfbuild/orig'))) {
      expect(key).not.toMatch(/\.lock$/);
      expect(await exists(join(cache, 'wfbuild/orig', key, 'meta.json'))).toBe(true);
    }
  });
});
