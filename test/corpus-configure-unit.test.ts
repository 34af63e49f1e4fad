/**
 * Build-system units of a configure-only profile (compile-only/configure-unit.ts), for real: a
 * tiny CMake package (test/fixtures/configure-unit) whose Debian series changes a compile
 * definition of one source, adds an install rule, changes a value CMake writes into a
 * generated config.h, and changes the flags of only the second target that compiles a source. Each unit's trees before and after it are configured from scratch by
 * the profile's debian/rules target, the translation units whose compilation changes are
 * compiled in their own trees and judged by create-diff-object; a second run configures
 * nothing again.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configuredKey, measureConfigureUnit, type ConfigureUnitResult } from '../pipeline/src/corpus/compile-only/configure-unit.ts';
import type { Profile } from '../pipeline/src/corpus/compile-only/prepare.ts';
import { parseSeries, type SeriesEntry } from '../pipeline/src/corpus/series.ts';
import { applySeriesPatch, withoutMailSignature } from '../pipeline/src/corpus/tree.ts';
import { debianPath } from '../pipeline/src/corpus/prerequisites.ts';
import { copyTree } from '../pipeline/src/common/fs.ts';
import { ensureCreateDiffObject } from '../pipeline/src/stages/create-diff-object.ts';

const fixture = fileURLToPath(new URL('./fixtures/configure-unit/tree', import.meta.url));
const profile: Profile = { name: 'test-cmake-1', how: 'cmake', configure: ['configure-tree'], path: 'build/compile_commands.json' };

describe('build-system units of a configure-only profile (a real CMake package)', () => {
  let work: string;
  let series: SeriesEntry[];
  /** The fixture with series patches [0, n) applied, and its identity. */
  const trees = new Map<number, { tree: string; id: string }>();

  beforeAll(async () => {
    process.env.PATH = debianPath;
    await ensureCreateDiffObject();
    work = await mkdtemp(join(tmpdir(), 'configure-unit-'));
    series = parseSeries(await readFile(join(fixture, 'debian', 'patches', 'series'), 'utf8'));
    await mkdir(join(work, 'sources'));
    for (let n = 0; n <= series.length; n++) {
      const tree = join(work, 'sources', `p${n}`);
      await copyTree(fixture, tree);
      const hash = createHash('sha256');
      for (const entry of series.slice(0, n)) {
        await applySeriesPatch(tree, entry);
        hash.update(await readFile(join(tree, 'debian', 'patches', entry.path)));
      }
      trees.set(n, { tree, id: hash.digest('hex') });
    }
    return () => rm(work, { recursive: true, force: true });
  });

  const measure = async (index: number, lines: string[], after?: { tree: string; id: string }): Promise<ConfigureUnitResult> => {
    const entry = series[index]!;
    const text = withoutMailSignature(await readFile(join(fixture, 'debian', 'patches', entry.path), 'utf8'));
    return measureConfigureUnit({
      pkg: 'greetd',
      folder: 'greetd_1.0-1',
      profile,
      unitId: entry.path,
      texts: [text],
      before: trees.get(index)!,
      after: after ?? trees.get(index + 1)!,
      cache: join(work, 'configured'),
      objectsCache: join(work, 'objects'),
      scratch: join(work, 'scratch'),
      jobs: 2,
      limit: 120,
      env: { PATH: debianPath },
      log: (line) => lines.push(line),
    });
  };

  it('measures each unit on its two configured trees; a second run configures nothing again', { timeout: 600_000 }, async () => {
    const lines: string[] = [];
    const repeat = await measure(0, lines);
    // Only greet.c's compile commands change (GREET_REPEAT=2 → 3): its loop bound, a text change.
    expect(repeat.affected.map((a) => [a.source, a.why])).toEqual([['src/greet.c', 'its compile command changes (call 1 of 2)']]);
    expect(repeat.verdict, lines.join('\n')).toMatchObject({ verdict: 'kpatchable', compiled: 1, objects: 1 });
    expect(repeat.trees).toMatchObject({ before: { cached: false }, after: { cached: false } });
    expect(repeat.trees!.before.database.map((u) => u.source).sort()).toEqual(['src/greet.c', 'src/main.c']);

    const install = await measure(1, lines);
    // An install rule: same compile commands, same config.h — nothing to compile.
    expect(install.affected).toEqual([]);
    expect(install.verdict).toMatchObject({ verdict: 'no-code', compiled: 0, reason: expect.stringMatching(/^configure output unchanged for compiled units: the 3 compiler calls \(2 sources\)/) });
    // The tree before it is the one the first unit was measured after: configured once.
    expect(install.trees!.before).toMatchObject({ cached: true, key: repeat.trees!.after.key });

    const port = await measure(2, lines);
    // GREET_PORT lands in the generated build/config.h, which main.c includes.
    expect(port.affected.map((a) => [a.source, a.why])).toEqual([['src/main.c', 'includes build/config.h']]);
    expect(port.verdict, lines.join('\n')).toMatchObject({ verdict: 'kpatchable', compiled: 1 });

    const factor = await measure(3, lines);
    // Only greet.c's second compiler call (the library's) changes: one source per database
    // entry would not see it.
    expect(factor.affected.map((a) => [a.source, a.why])).toEqual([['src/greet.c', 'its compile command changes (call 2 of 2)']]);
    expect(factor.affected[0]!.after!.args).toContain('-DGREET_FACTOR=2');
    expect(factor.trees!.after.database.find((u) => u.source === 'src/greet.c')!.args).not.toContain('-DGREET_FACTOR=2');
    expect(factor.verdict, lines.join('\n')).toMatchObject({ verdict: 'kpatchable', compiled: 1, objects: 1 });
    expect(lines.filter((l) => l.startsWith('configuring '))).toHaveLength(5);

    // Every configured tree is cached under its key: the second run configures and compiles nothing.
    const again: string[] = [];
    const second = await Promise.all([0, 1, 2, 3].map((i) => measure(i, again)));
    expect(second.map((r) => r.verdict.verdict)).toEqual(['kpatchable', 'no-code', 'kpatchable', 'kpatchable']);
    expect(second.every((r) => r.trees!.before.cached && r.trees!.after.cached)).toBe(true);
    expect(again.filter((l) => /configuring|compiling/.test(l)), again.join('\n')).toEqual([]);
    const keys = [0, 1, 2, 3, 4].map((n) => configuredKey(profile, trees.get(n)!.id));
    expect((await readdir(join(work, 'configured', 'greetd_1.0-1'))).sort()).toEqual([...keys].sort());
  });

  it('a unit that breaks configure fails with the configure error; a tree before it that does not configure is not measurable', { timeout: 600_000 }, async () => {
    const broken = join(work, 'sources', 'broken');
    await copyTree(trees.get(1)!.tree, broken);
    await appendFile(join(broken, 'CMakeLists.txt'), 'message(FATAL_ERROR "greetd: no greeting configured")\n');
    const lines: string[] = [];
    const breaks = await measure(0, lines, { tree: broken, id: 'broken' });
    expect(breaks.verdict).toMatchObject({ verdict: 'failed', reason: expect.stringMatching(/^configure fails with the unit applied \(configure-tree, from scratch\): CMake Error at CMakeLists\.txt:\d+/) });
    expect(breaks.trees).toBeNull();
    // No binary exists without the unit: the reason is the tree's, not a limit of ours.
    const text = await readFile(join(fixture, 'debian', 'patches', series[0]!.path), 'utf8');
    const before = await measureConfigureUnit({
      pkg: 'greetd', folder: 'greetd_1.0-1', profile, unitId: 'reverse', texts: [text], before: { tree: broken, id: 'broken' }, after: trees.get(1)!,
      cache: join(work, 'configured'), objectsCache: join(work, 'objects'), scratch: join(work, 'scratch'), jobs: 2, limit: 120, env: { PATH: debianPath }, log: () => {},
    });
    expect(before.verdict).toMatchObject({ verdict: 'not-measurable', reason: expect.stringMatching(/^the tree before the unit does not configure .*CMake Error/) });
  });

  it('keeps the translation-unit limit: more affected units than allowed is a failed unit with the count', { timeout: 600_000 }, async () => {
    const entry = series[0]!;
    const text = await readFile(join(fixture, 'debian', 'patches', entry.path), 'utf8');
    const result = await measureConfigureUnit({
      pkg: 'greetd', folder: 'greetd_1.0-1', profile, unitId: entry.path, texts: [text], before: trees.get(0)!, after: trees.get(1)!,
      cache: join(work, 'configured'), objectsCache: join(work, 'objects'), scratch: join(work, 'scratch'), jobs: 2, limit: 0, env: { PATH: debianPath }, log: () => {},
    });
    expect(result.verdict).toMatchObject({ verdict: 'failed', compiled: 0, reason: 'compile-only limit: 1 translation units are affected (limit 0; src/greet.c: its compile command changes (call 1 of 2))' });
  });
});
