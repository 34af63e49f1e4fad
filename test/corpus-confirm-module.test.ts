/**
 * A unit that changes a dynamic module, confirmed on the base build (compile-only/confirm-base.ts)
 * as nginx's mail and stream units are: a small server linked with -rdynamic that dlopen()s
 * objs/mod_x.so, whose code calls what only the server exports. Without the manifest's
 * services.loadedBy the dry run cannot resolve those calls (a call the module already made:
 * `wfpatch-ctl check` refuses it; a new one: create-diff-object --binary does); with it both
 * search the server, as libwfpatch does at run time, and the unit is confirmed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyOnBase, confirmOnBase } from '../pipeline/src/corpus/compile-only/confirm-base.ts';
import { ensureWfpatchCtl } from '../pipeline/src/corpus/confirm.ts';
import { classifyUnit } from '../pipeline/src/corpus/classify-unit.ts';
import type { Services } from '../pipeline/src/corpus/services.ts';
import { chooseBuildCommand } from '../pipeline/src/stages/build-command.ts';
import { ensureCreateDiffObject } from '../pipeline/src/stages/create-diff-object.ts';
import { originalBuild } from '../pipeline/src/stages/original-build.ts';
import { describeTree } from '../pipeline/src/stages/source.ts';
import { put, diffOf } from './helpers/tree-files.ts';

// Big enough for the 5-byte jump that redirects it.
const mod = (body: string) => `void server_log(const char *what);\nchar *server_alloc(unsigned long n);\n\nint mod_handle(int x)\n{\n\tvolatile int y = x;\n${body}\treturn y * 3 + x;\n}\n`;
const files: Record<string, string> = {
  'src/mod.c': mod('\tserver_log("handle");\n'),
  'src/main.c':
    '#include <dlfcn.h>\n#include <stdio.h>\n#include <stdlib.h>\n\n' +
    '__attribute__((noinline, used)) void server_log(const char *what) { fprintf(stderr, "%s\\n", what); }\n' +
    '__attribute__((noinline, used)) char *server_alloc(unsigned long n) { return malloc(n); }\n\n' +
    'int main(int argc, char **argv)\n{\n\tvoid *h = dlopen(argc > 1 ? argv[1] : "objs/mod_x.so", RTLD_NOW | RTLD_GLOBAL);\n\treturn h ? 0 : 1;\n}\n',
  // As nginx: the program (exporting its symbols) and its modules in objs/.
  Makefile:
    'all: build/objs/server build/objs/mod_x.so\n\n' +
    'build/objs/server: src/main.c\n\tmkdir -p build/objs && cd build && $(CC) -O2 -g -c ../src/main.c -o main.o && $(CC) -rdynamic -o objs/server main.o -ldl\n\n' +
    'build/objs/mod_x.so: src/mod.c\n\tmkdir -p build/objs && cd build && $(CC) -O2 -g -fPIC -c ../src/mod.c -o mod.o && $(CC) -shared -o objs/mod_x.so mod.o\n',
};

const plain: Services = { longRunning: ['^server$', '\\.so$'], programs: [], note: '' };
const withLoader: Services = { ...plain, loadedBy: [{ modules: '^(.*/)?objs/[^/]+\\.so$', program: '$1objs/server' }] };

describe('a unit of a dynamic module confirmed on the base build with services.loadedBy', () => {
  beforeAll(async () => {
    await ensureCreateDiffObject();
    await ensureWfpatchCtl();
  });

  it('resolves what only the loading program exports, which the module alone cannot', { timeout: 300_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'confirm-module-'));
    try {
      const pristine = join(root, 'server');
      await put(pristine, files);
      const source = await describeTree(pristine);
      const base = await originalBuild(source, await chooseBuildCommand(source, undefined), join(root, 'orig'), () => {});
      expect(base.log.some((e) => e.kind === 'link' && e.output === 'build/objs/mod_x.so')).toBe(true);
      // A call the module already makes (it imports server_log), as nginx's mail units call ngx_pnalloc.
      const known = join(root, 'known.patch');
      await writeFile(known, await diffOf(join(root, 'd1'), 'src/mod.c', files['src/mod.c']!, mod('\tif (x < 0)\n\t\tserver_log("negative");\n\tserver_log("handle");\n')));
      // A call it never made (server_alloc), as CVE-2026-28755 calls ngx_ssl_ocsp_get_status.
      const added = join(root, 'added.patch');
      await writeFile(added, await diffOf(join(root, 'd2'), 'src/mod.c', files['src/mod.c']!, mod('\tif (x < 0 && !server_alloc(1))\n\t\treturn 0;\n\tserver_log("handle");\n')));
      const input = { base, pristine, patchFile: known, touched: ['src/mod.c'], services: plain, work: join(root, 'work'), jobs: 1, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } };

      // Without the rule: the dry run refuses the first, create-diff-object --binary the second.
      const knownAlone = await confirmOnBase(input);
      expect(knownAlone, JSON.stringify(knownAlone)).toMatchObject({ kind: 'checked', checks: [{ binary: 'build/objs/mod_x.so', ok: false, line: expect.stringMatching(/unresolved symbol server_log \(not in .*mod_x\.so, not exported by the \d+ libraries it needs\)/) }] });
      const addedAlone = await confirmOnBase({ ...input, patchFile: added });
      expect(addedAlone).toMatchObject({ kind: 'unconfirmed', why: expect.stringMatching(/create-diff-object --binary build\/objs\/mod_x\.so: not-patchable \(server_alloc does not resolve/) });

      // With it: both confirmed, the server searched as the loading program.
      for (const patchFile of [known, added]) {
        const outcome = await confirmOnBase({ ...input, patchFile, services: withLoader });
        expect(outcome, JSON.stringify(outcome)).toMatchObject({ kind: 'checked', checks: [{ binary: 'build/objs/mod_x.so', ok: true, line: expect.stringMatching(/^ok: .*1 loading program read/) }] });
      }
      expect(await classifyOnBase({ ...input, patchFile: added, services: withLoader })).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: true, binaries: ['build/objs/mod_x.so'] } });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('the full pipeline (original and patched builds, bundle, dry run) resolves it the same way', { timeout: 300_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'confirm-module-full-'));
    try {
      const tree = join(root, 'server');
      await put(tree, files);
      const added = join(root, 'added.patch');
      await writeFile(added, await diffOf(join(root, 'd'), 'src/mod.c', files['src/mod.c']!, mod('\tif (x < 0 && !server_alloc(1))\n\t\treturn 0;\n\tserver_log("handle");\n')));
      const alone = await classifyUnit({ patchFile: added, tree, buildCmd: null, services: plain });
      expect(alone, JSON.stringify(alone)).toMatchObject({ verdict: 'text-only', reason: expect.stringMatching(/server_alloc does not resolve in .*mod_x\.so/) });
      const loaded = await classifyUnit({ patchFile: added, tree, buildCmd: null, services: withLoader });
      expect(loaded, JSON.stringify(loaded)).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: true, binaries: ['build/objs/mod_x.so'], how: expect.stringMatching(/^ok: .*1 loading program read/) } });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
