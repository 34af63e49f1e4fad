/**
 * The corpus' compile-only mode: compile databases from the three sources build systems offer,
 * the affected-unit search, and — for real — a walk over memcached's whole Debian series
 * checked against what the full pipeline says about the same patches.
 */
import { describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitWords, fromCompileCommands, fromMakeDryRun, fromBuildLog, rebase, toTranslationUnit } from '../pipeline/src/corpus/compile-only/database.ts';
import { affectedUnits } from '../pipeline/src/corpus/compile-only/affected.ts';
import { commitsOf, triageAll, verdictWithoutCompiling } from '../pipeline/src/corpus/compile-only/walk.ts';
import { classifyCompileOnly } from '../pipeline/src/corpus/compile-only/index.ts';
import { profiles, runGypActions } from '../pipeline/src/corpus/compile-only/prepare.ts';
import { readManifest } from '../pipeline/src/corpus/manifest.ts';
import { debianPath } from '../pipeline/src/corpus/prerequisites.ts';
import { ensureSources } from '../pipeline/src/corpus/tree.ts';

describe('compile databases', () => {
  it('splits command lines as CMake and gyp quote them', () => {
    expect(splitWords(`g++ -DA='"x y"' -DB=\\"q\\" "-I/a b" 'c d' e\\ f`)).toEqual(['g++', '-DA="x y"', '-DB="q"', '-I/a b', 'c d', 'e f']);
    expect(() => splitWords("gcc 'open")).toThrow(/unterminated/);
  });

  it('reads compile_commands.json: output and dependency options dropped, sections added, links skipped', () => {
    const json = JSON.stringify([
      { directory: '/t/build/sql', command: '/usr/bin/c++ -DX=1 -I/t/include -MD -MT sql/a.o -MF a.d -o CMakeFiles/a.o -c /t/sql/a.cc', file: '/t/sql/a.cc' },
      { directory: '/t/build', arguments: ['gcc', '-O2', '-c', '../lib/b.c', '-o', 'b.o', '-flto=auto'], file: '../lib/b.c' },
      { directory: '/t/build', command: 'c++ -o prog a.o b.o', file: '/t/sql/a.cc' },
      { directory: '/tmp', command: 'gcc -c /tmp/conftest.c -o conftest.o', file: '/tmp/conftest.c' },
    ]);
    const units = fromCompileCommands(json, '/t');
    expect(units).toHaveLength(2);
    expect(units[0]).toEqual({ directory: '/t/build/sql', compiler: '/usr/bin/c++', source: 'sql/a.cc', args: ['-DX=1', '-I/t/include', '-c', '/t/sql/a.cc', '-ffunction-sections', '-fdata-sections'] });
    expect(units[1]!.source).toBe('lib/b.c');
    expect(units[1]!.args).not.toContain('-flto=auto');
    expect(units[1]!.args).not.toContain('b.o');
  });

  it("reads gyp's make -n output: the echo lines are skipped, sources resolved against make's folder", () => {
    const text = [
      `printf '%s\\n' '  g++ -o /n/out/Release/obj.target/libnode/src/a.o ../src/a.cc -c'`,
      `g++ -o /n/out/Release/obj.target/libnode/src/a.o ../src/a.cc '-DNODE_X=1' -I../deps/v8/include -MMD -MF /n/out/Release/.deps/a.o.d.raw   -c`,
      `gcc -o /n/out/Release/obj.target/uv/deps/uv/src/idna.o ../deps/uv/src/idna.c -O3 -c`,
      `touch /n/out/Release/stamp`,
      `g++ -o /n/out/Release/node -Wl,--start-group a.o -Wl,--end-group`,
    ].join('\n');
    const units = fromMakeDryRun(text, '/n/out', '/n');
    expect(units.map((u) => u.source)).toEqual(['src/a.cc', 'deps/uv/src/idna.c']);
    expect(units[0]!.args).toEqual(['../src/a.cc', '-DNODE_X=1', '-I../deps/v8/include', '-c', '-ffunction-sections', '-fdata-sections']);
    expect(units[0]!.directory).toBe('/n/out');
  });

  it("reads the compiler wrapper's log and moves a database to a copy of the tree", () => {
    const units = fromBuildLog(
      [
        { kind: 'compile', cwd: 'src', sources: ['src/x.c'], object: 'src/x.o', tool: 'gcc', args: ['-O2', '-c', 'x.c', '-o', 'x.o', '-ffunction-sections', '-fdata-sections', '-ffile-prefix-map=/orig=.'] },
        { kind: 'link', cwd: 'src', output: 'src/prog', inputs: ['src/x.o'], sources: [], shared: false, tool: 'gcc', args: ['-o', 'prog', 'x.o'] },
      ],
      '/orig',
    );
    expect(units).toEqual([{ directory: '/orig/src', compiler: 'gcc', source: 'src/x.c', args: ['-O2', '-c', 'x.c', '-ffunction-sections', '-fdata-sections', '-ffile-prefix-map=/orig=.'] }]);
    expect(rebase(units[0]!, '/orig', '/walk')).toMatchObject({ directory: '/walk/src', args: expect.arrayContaining(['-ffile-prefix-map=/walk=.']) });
    expect(toTranslationUnit({ directory: '/orig', arguments: ['gcc', '-E', 'x.c'], file: 'x.c' }, '/orig')).toBeNull();
  });
});

describe('gyp actions', () => {
  it('runs an action by its recorded command, without a shell and without make', async () => {
    const tree = await mkdtemp(join(tmpdir(), 'gyp-'));
    try {
      await mkdir(join(tree, 'out', 'sub'), { recursive: true });
      await mkdir(join(tree, 'src'));
      await writeFile(join(tree, 'src', 'a.pdl'), 'protocol\n');
      const mk = [
        'cmd_foo_gyp_libnode_target_make_header = LD_LIBRARY_PATH=$(builddir)/lib.host:$$LD_LIBRARY_PATH; export LD_LIBRARY_PATH; cd $(srcdir)/.; mkdir -p $(obj)/gen/x; cp src/a.pdl "$(obj)/gen/x/a.h"',
        'cmd_foo_gyp_libnode_target_other = cd $(srcdir)/.; false',
      ].join('\n');
      await writeFile(join(tree, 'out', 'sub', 'libnode.target.mk'), mk + '\n');
      await runGypActions(join(tree, 'out'), join(tree, 'out', 'Release'), tree, ['make_header'], { PATH: debianPath }, () => {});
      expect(await readFile(join(tree, 'out', 'Release', 'obj', 'gen', 'x', 'a.h'), 'utf8')).toBe('protocol\n');
      await expect(runGypActions(join(tree, 'out'), join(tree, 'out', 'Release'), tree, ['other'], { PATH: debianPath }, () => {})).rejects.toThrow(/gyp action other failed/);
      await expect(runGypActions(join(tree, 'out'), join(tree, 'out', 'Release'), tree, ['missing'], { PATH: debianPath }, () => {})).rejects.toThrow(/no command/);
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  });
});

describe('affected translation units', () => {
  it('follows headers through headers, and says which touched sources no unit compiles', async () => {
    const tree = await mkdtemp(join(tmpdir(), 'affected-'));
    try {
      const files: Record<string, string> = {
        'include/base.h': '#define BASE 1\n',
        'include/mid.h': '#include "base.h"\n',
        'src/a.c': '#include <mid.h>\nint a;\n',
        'src/b.c': '  #  include "other.h"\nint b;\n',
        'src/c.c': '#include "../include/base.h"\n',
        'src/other.h': '\n',
        'src/unbuilt.c': '#include "base.h"\n',
      };
      for (const [path, text] of Object.entries(files)) {
        await mkdir(join(tree, path, '..'), { recursive: true });
        await writeFile(join(tree, path), text);
      }
      const db = ['src/a.c', 'src/b.c', 'src/c.c'].map((source) => ({ directory: tree, compiler: 'gcc', args: ['-c', source], source }));
      const viaHeader = await affectedUnits(tree, ['include/base.h'], db);
      expect(viaHeader.units.map((u) => u.unit.source).sort()).toEqual(['src/a.c', 'src/c.c']);
      expect(viaHeader.unusedHeaders).toEqual([]);
      const direct = await affectedUnits(tree, ['src/b.c', 'src/unbuilt.c'], db);
      expect(direct.units.map((u) => [u.unit.source, u.why])).toEqual([['src/b.c', 'touched']]);
      expect(direct.uncompiledSources).toEqual(['src/unbuilt.c']);
      const unused = await affectedUnits(tree, ['include/nobody.h'], db);
      expect(unused).toMatchObject({ units: [], unusedHeaders: ['include/nobody.h'] });
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  });
});

describe('verdicts without compiling', () => {
  const diff = (path: string) => `--- a/${path}\n+++ b/${path}\n@@ -1 +1 @@\n-a\n+b\n`;
  const mail = (path: string) => `From 1234 Mon Sep 17 00:00:00 2001\nFrom: A Person <a@example.org>\nSubject: [PATCH] fix\n\n---\n ${path} | 2 +-\n\n${diff(path)}`;

  it('triages format-patch mails one by one (their headers between two diffs are no diff syntax)', () => {
    const t = triageAll([mail('lib/_tls_wrap.js'), mail('src/node_http2.cc')], 'CVE-X');
    expect(t.files.map((f) => f.path)).toEqual(['lib/_tls_wrap.js', 'src/node_http2.cc']);
    expect(t.touchesCompiledCode).toBe(true);
  });

  it("nodejs: a lib/*.js change is data the binary embeds: not text-only, with the file named", () => {
    const v = verdictWithoutCompiling([diff('lib/_http_incoming.js')], 'u', profiles['nodejs']!.embedded);
    expect(v).toMatchObject({ verdict: 'not-text-only', reason: expect.stringMatching(/^lib\/_http_incoming\.js: .*js2c/) });
    expect(verdictWithoutCompiling([diff('doc/api/http.md')], 'u', profiles['nodejs']!.embedded)).toMatchObject({ verdict: 'no-code' });
    expect(verdictWithoutCompiling([diff('src/node_http2.cc')], 'u', profiles['nodejs']!.embedded)).toBeNull();
  });

  it('splits a patch file of several format-patch mails into its commits (undone newest first)', () => {
    const one = (sha: string, path: string) => `From ${sha} Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: x\n\n---\n${diff(path)}`;
    const text = one('a'.repeat(40), 'x.c') + one('b'.repeat(40), 'x.c');
    expect(commitsOf(text)).toEqual([one('a'.repeat(40), 'x.c'), one('b'.repeat(40), 'x.c')]);
    expect(commitsOf(diff('x.c'))).toEqual([diff('x.c')]);
    // a DEP-3 header and the first commit's diff, then mailed commits (dovecot's CVE fixes)
    const dep3 = `Description: upstream fix\nOrigin: https://example.org/compare/a...b.patch\n\n${diff('x.c')}\n`;
    expect(commitsOf(dep3 + one('b'.repeat(40), 'y.c'))).toEqual([dep3, one('b'.repeat(40), 'y.c')]);
    // a header alone before the mails is the first mail's (samba's bug-16018 series)
    const note = 'Description: 38 commits from upstream\n\n';
    expect(commitsOf(note + text)).toEqual([note + one('a'.repeat(40), 'x.c'), one('b'.repeat(40), 'x.c')]);
  });

  it('a build-system change is not guessed at: failed, naming the file', () => {
    const v = verdictWithoutCompiling([diff('src/x.c'), diff('storage/mroonga/CMakeLists.txt')], 'u', undefined);
    expect(v).toMatchObject({ verdict: 'failed', reason: expect.stringMatching(/^storage\/mroonga\/CMakeLists\.txt: a build-system file .* --full-builds/) });
  });
});

describe("a compile-only walk over memcached's whole series (real build, real compiles)", () => {
  it('classifies all nine units in one walk and agrees with the full pipeline', { timeout: 1_800_000 }, async () => {
    process.env.PATH = debianPath;
    const manifest = await readManifest('memcached');
    const cacheDir = await mkdtemp(join(tmpdir(), 'compile-only-memcached-'));
    const lines: string[] = [];
    try {
      const run = (tools = '', noBuilds = false, inputs = 'in', only?: ReadonlySet<string>) =>
        classifyCompileOnly(manifest, manifest.units, {
          jobs: 2,
          limit: 120,
          tools: {},
          cacheDir,
          log: (line) => lines.push(line),
          noBuilds,
          profile: { name: 'test-build-log', how: 'build-log' },
          keyOf: (unit, mode) => `${unit.sha256.slice(0, 16)}-${mode.replace(/\W+/g, '_')}${tools}`,
          inputsOf: (unit) => `${inputs}-${unit.sha256.slice(0, 16)}`,
          ...(only ? { only } : {}),
          ensurePrerequisites: async () => { await ensureSources(manifest); },
        });
      const first = await run();
      const byUnit = new Map(first.units.map((u) => [u.unit, u]));
      expect(first.units).toHaveLength(9);
      expect(first.units.filter((u) => u.verdict === 'failed' || u.verdict === 'pending'), lines.join('\n')).toEqual([]);
      // The full pipeline's verdicts for these patches (test/corpus-memcached.test.ts and the series walk).
      expect(byUnit.get('0007-uninitialized-variables.patch')).toMatchObject({ verdict: 'kpatchable', appliedAt: 5 });
      expect(byUnit.get('0008-CVE-2026-47783-CVE-2026-47784.patch')).toMatchObject({ verdict: 'no-code', reason: expect.stringMatching(/identical objects/) });
      expect(byUnit.get('0009-CVE-2023-46852.patch')).toMatchObject({ verdict: 'no-code', reason: expect.stringMatching(/proto_proxy\.c: not compiled/) });
      expect(byUnit.get('CVE-2023-46853.patch')).toMatchObject({ verdict: 'no-code', reason: expect.stringMatching(/proxy_request\.c: not compiled/) });
      expect(byUnit.get('0001-LSB-requirements.patch')).toMatchObject({ verdict: 'no-code' });
      // Resumable: every unit comes from the cache, nothing is compiled or walked again.
      lines.length = 0;
      const second = await run();
      expect(second.units.map((u) => u.verdict)).toEqual(first.units.map((u) => u.verdict));
      expect(lines.every((l) => l.endsWith('(cached)')), lines.join('\n')).toBe(true);
      expect((await readdir(cacheDir)).filter((n) => n.endsWith('.json') && !n.startsWith('prepare-'))).toHaveLength(9);
      // The tools moved (new keys): a reporting run (--no-builds) takes the earlier results of
      // the same inputs, flagged; with other inputs (the unit or manifest changed) it does not.
      const reported = await run('-newtools', true);
      expect(reported.units.map((u) => u.verdict)).toEqual(first.units.map((u) => u.verdict));
      expect(reported.units.find((u) => u.unit === '0007-uninitialized-variables.patch')).toMatchObject({ verdict: 'kpatchable', earlierTools: true });
      const otherInputs = await run('-newtools2', true, 'changed');
      expect(otherInputs.units.find((u) => u.unit === '0007-uninitialized-variables.patch')).toMatchObject({ verdict: 'pending' });
      // --units: the one unit is classified anew with the new tools, the others are reported.
      lines.length = 0;
      const one = await run('-newtools3', false, 'in', new Set(['0007-uninitialized-variables.patch']));
      expect(one.units.find((u) => u.unit === '0007-uninitialized-variables.patch')).toMatchObject({ verdict: 'kpatchable' });
      expect(one.units.find((u) => u.unit === '0007-uninitialized-variables.patch')!.earlierTools).toBeUndefined();
      expect(one.units.find((u) => u.unit === '0008-CVE-2026-47783-CVE-2026-47784.patch')).toMatchObject({ verdict: 'no-code', earlierTools: true });
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
