/**
 * Samba's compile-only preparation (pipeline/src/corpus/compile-only/samba.ts): the parsing
 * helpers, the missing-header search with the real gcc, and the clear errors for trees that
 * are not (or no longer) configured Samba trees. Configuring Samba itself is not tested here:
 * it takes minutes; the corpus run exercises it.
 */
import { describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  configureSamba,
  configuredTop,
  generateFor,
  missingHeaders,
  parseDependencyRule,
  parseWafDatabase,
  sambaCommands,
  spelledName,
  unitsFor,
} from '../pipeline/src/corpus/compile-only/samba.ts';
import { UserError } from '../pipeline/src/cli/errors.ts';

/** An entry as waf clangdb writes it (the -o joined to its value, -MMD, sources relative to bin/default). */
const wafEntry = (tree: string, source: string) => ({
  directory: `${tree}/bin/default`,
  arguments: ['x86_64-linux-gnu-gcc', '-g', '-O2', '-MMD', '-Ilib', '-I../../lib', `../../${source}`, '-c', `-o${tree}/bin/default/${source}.3.o`, '-D_FORTIFY_SOURCE=2'],
  file: `../../${source}`,
});

describe('samba compile database', () => {
  it("reads waf's compile_commands.json and maps touched sources to their units", () => {
    const tree = '/t/samba';
    const commands = parseWafDatabase(JSON.stringify([wafEntry(tree, 'lib/util/util_str.c'), wafEntry(tree, 'source3/lib/substitute.c')]), 'db');
    expect(commands).toHaveLength(2);
    const units = unitsFor(commands, tree, ['lib/util/util_str.c', 'lib/util/tests/test_string_sub.c']);
    expect([...units.keys()]).toEqual(['lib/util/util_str.c']);
    const unit = units.get('lib/util/util_str.c')!;
    expect(unit.directory).toBe('/t/samba/bin/default');
    expect(unit.args).not.toContain('-MMD');
    expect(unit.args.some((a) => a.startsWith('-o'))).toBe(false);
    expect(unit.args).toContain('-ffunction-sections');
  });

  it('rejects a database that is not one, naming the file', () => {
    expect(() => parseWafDatabase('{', 'x.json')).toThrow(/x.json: not JSON/);
    expect(() => parseWafDatabase('{}', 'x.json')).toThrow(/not an array/);
    expect(() => parseWafDatabase(JSON.stringify([{ directory: '/d', file: 'a.c', command: 'gcc -c a.c' }]), 'x.json')).toThrow(UserError);
  });
});

describe('generated headers', () => {
  it('parses a gcc -M rule with continuation lines', () => {
    expect(parseDependencyRule('a.o: ../../a.c ../../a.h \\\n  gen_ndr/x.h \\\n ../y.h\n')).toEqual(['../../a.c', '../../a.h', 'gen_ndr/x.h', '../y.h']);
    expect(() => parseDependencyRule('no rule here')).toThrow(/not a dependency rule/);
  });

  it('strips the leading ../ of an #include spelling, refuses absolute names', () => {
    expect(spelledName('../librpc/gen_ndr/lsa.h')).toBe('librpc/gen_ndr/lsa.h');
    expect(spelledName('../../x/./y.h')).toBe('x/y.h');
    expect(spelledName('gen_ndr/dcerpc.h')).toBe('gen_ndr/dcerpc.h');
    expect(() => spelledName('/usr/include/x.h')).toThrow(/not a relative header name/);
    expect(() => spelledName('..')).toThrow(/not a relative header name/);
  });

  it('finds the headers a unit includes that do not exist yet (real gcc), and only those', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'samba-prepare-'));
    try {
      await mkdir(join(dir, 'src', 'gen'), { recursive: true });
      await writeFile(join(dir, 'src', 'here.h'), '#include "gen/nested_missing.h"\n');
      await writeFile(join(dir, 'src', 'a.c'), '#include <stdio.h>\n#include "here.h"\n#include "gen/ndr_x.h"\nint f(void) { return 0; }\n');
      const missing = await missingHeaders({ directory: join(dir, 'src'), compiler: 'gcc', args: ['-O2', '-c', 'a.c'], source: 'src/a.c' });
      expect(missing.sort()).toEqual(['gen/ndr_x.h', 'gen/nested_missing.h']);
      await writeFile(join(dir, 'src', 'gen', 'ndr_x.h'), '\n');
      await writeFile(join(dir, 'src', 'gen', 'nested_missing.h'), '\n');
      expect(await missingHeaders({ directory: join(dir, 'src'), compiler: 'gcc', args: ['-O2', '-c', 'a.c'], source: 'src/a.c' })).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('trees that are not ready', () => {
  it('reads the configured folder from waf’s lock file', () => {
    expect(configuredTop("out_dir = '/a/tree/bin'\ntop_dir = '/a/tree'\n")).toBe('/a/tree');
    expect(configuredTop('nothing\n')).toBeNull();
  });

  it('refuses to configure, read or generate in folders that are no configured Samba tree here', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'samba-prepare-'));
    try {
      await expect(configureSamba(dir, () => {})).rejects.toThrow(/not a Samba source tree.*debian\/rules/);
      await expect(sambaCommands(dir)).rejects.toThrow(/run configureSamba first/);
      await expect(generateFor(dir, ['a.c'], () => {})).rejects.toThrow(/not configured/);
      // A copy of a configured tree: waf would look for its configuration in the original.
      await writeFile(join(dir, '.lock-wscript'), "top_dir = '/somewhere/else/tree'\n");
      await expect(generateFor(dir, ['a.c'], () => {})).rejects.toThrow(/configured as \/somewhere\/else\/tree; waf cannot run in a copy/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
