/**
 * Compile-only verdicts confirmed against a binary (compile-only/confirm-base.ts): a unit is
 * measured again on a real wrapper build of its base tree — a small server whose Makefile, like
 * nginx's debian/rules, copies src/ into build/ and compiles the copy — and its bundle is
 * dry-run by `wfpatch-ctl check` in the binary that build linked.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyOnBase, confirmOnBase } from '../pipeline/src/corpus/compile-only/confirm-base.ts';
import { confirmVerdict, ensureWfpatchCtl } from '../pipeline/src/corpus/confirm.ts';
import { chooseBuildCommand } from '../pipeline/src/stages/build-command.ts';
import { ensureCreateDiffObject } from '../pipeline/src/stages/create-diff-object.ts';
import { originalBuild } from '../pipeline/src/stages/original-build.ts';
import { describeTree } from '../pipeline/src/stages/source.ts';
import { put, diffOf } from './helpers/tree-files.ts';

// Big enough for the 5-byte jump that redirects it.
const util = (body: string) => `#include "util.h"\n\nint clamp(int x)\n{\n\tvolatile int y = x;\n${body}\treturn y * 3 + x;\n}\n`;
const files: Record<string, string> = {
  'src/util.h': 'int clamp(int x);\n',
  'src/util.c': util(''),
  'src/main.c': '#include <stdio.h>\n#include "util.h"\n\nint main(int argc, char **argv)\n{\n\t(void)argv;\n\tprintf("%d\\n", clamp(argc));\n\treturn 0;\n}\n',
  // As nginx's config.arch step: the sources are copied, and the copy is compiled.
  Makefile:
    'all: build/server\n\nbuild/server: src/main.c src/util.c src/util.h\n\trm -rf build && mkdir -p build && cp -a src build/\n' +
    '\tcd build && $(CC) -O2 -g -c src/util.c -o util.o && $(CC) -O2 -g -c src/main.c -o main.o && $(CC) -o server main.o util.o\n',
};

describe('a compile-only verdict confirmed on the base build (real wrapper build, create-diff-object --binary, wfpatch-ctl check)', () => {
  beforeAll(async () => {
    await ensureCreateDiffObject();
    await ensureWfpatchCtl();
  });

  it("links the unit's patch into a bundle for the build's server and resolves it there; a unit that does not apply is not confirmed", { timeout: 300_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'confirm-base-'));
    try {
      const pristine = join(root, 'server');
      await put(pristine, files);
      const source = await describeTree(pristine);
      const base = await originalBuild(source, await chooseBuildCommand(source, undefined), join(root, 'orig'), () => {});
      expect(base.log.some((e) => e.kind === 'link' && e.output === 'build/server')).toBe(true);
      const patchFile = join(root, 'fix.patch');
      await writeFile(patchFile, await diffOf(join(root, 'diff'), 'src/util.c', util(''), util('\tif (x < 0)\n\t\treturn 0;\n')));
      const input = { base, pristine, patchFile, touched: ['src/util.c'], services: { longRunning: ['^server$'], programs: [], note: '' }, work: join(root, 'work'), jobs: 1, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } };
      const outcome = await confirmOnBase(input);
      expect(outcome, JSON.stringify(outcome)).toMatchObject({ kind: 'checked', checks: [{ binary: 'build/server', ok: true }] });
      const verdict = { verdict: 'kpatchable', reason: '', reasons: [], objects: 1 } as const;
      expect(confirmVerdict(verdict, outcome.kind === 'checked' ? outcome.checks : [])).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: true, binaries: ['build/server'] } });

      // A unit written against other code does not apply on this base: said, never "confirmed".
      const other = join(root, 'other.patch');
      await writeFile(other, await diffOf(join(root, 'diff2'), 'src/util.c', util('\tx++;\n'), util('\tx += 2;\n')));
      expect(await confirmOnBase({ ...input, patchFile: other })).toEqual({ kind: 'unconfirmed', why: 'on the update base, the unit does not apply alone' });

      // The whole verdict from the base build (a package whose build records no make to re-run).
      expect(await classifyOnBase(input)).toMatchObject({ verdict: 'kpatchable', compiled: 1, confirmation: { confirmed: true, binaries: ['build/server'] } });
      // A new initialised global the unit adds is data: not text-only, but live-patchable with new data.
      const data = join(root, 'data.patch');
      await writeFile(data, await diffOf(join(root, 'diff3'), 'src/util.c', util(''), `int calls = 7;\n${util('\tcalls++;\n')}`));
      expect(await classifyOnBase({ ...input, patchFile: data })).toMatchObject({ verdict: 'not-text-only', reason: expect.stringMatching(/calls/) });
      // A unit that touches nothing this build compiles: no compiled code, without compiling.
      expect(await classifyOnBase({ ...input, touched: ['src/unused.c'] })).toMatchObject({ verdict: 'no-code' });
      expect(await classifyOnBase({ ...input, patchFile: other })).toBeNull();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
