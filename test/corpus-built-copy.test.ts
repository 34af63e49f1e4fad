/**
 * Confirming the units of configure-only profiles against files linked for them in a kept
 * built copy (pipeline/src/corpus/compile-only/built-copy.ts): which of waf's links are built
 * for a unit, and — on a real make build of a small package (test/fixtures/walk-confirm) —
 * the copy following the series walk, built through the wrapper at the configured tree's
 * path, each kpatch-able unit dry-run there with `wfpatch-ctl check`, kept between runs, and
 * a failed build reported. Samba's and Node.js' own builds (minutes to hours) run in the
 * corpus run (`wfbuild corpus --packages samba`), not here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { BuiltCopyBinaries, linksFor, makeStrategy, type WafLink } from '../pipeline/src/corpus/compile-only/built-copy.ts';
import { fromMakeDryRun, rebase } from '../pipeline/src/corpus/compile-only/database.ts';
import { walkSeries, type WalkVerdict } from '../pipeline/src/corpus/compile-only/walk.ts';
import { ensureWfpatchCtl } from '../pipeline/src/corpus/confirm.ts';
import { parseSeries } from '../pipeline/src/corpus/series.ts';
import { applySeriesPatch } from '../pipeline/src/corpus/tree.ts';
import { copyTree } from '../pipeline/src/common/fs.ts';
import { ensureCreateDiffObject } from '../pipeline/src/stages/create-diff-object.ts';

const services = { longRunning: ['^(smbd|samba)$', '\\.so(\\.|$)'], programs: [], note: '' };

const links: WafLink[] = [
  { target: 'service_nbtd', output: 'bin/default/source4/nbt_server/libservice_module_nbtd.so', sources: ['source4/nbt_server/wins/wins_hook.c', 'source4/nbt_server/nbt_server.c'] },
  { target: 'service_wrepl', output: 'bin/default/source4/wrepl_server/libservice_module_wrepl.so', sources: ['source4/nbt_server/wins/wins_hook.c'] },
  { target: 'smbtorture', output: 'bin/default/source4/torture/smbtorture', sources: ['source4/nbt_server/wins/wins_hook.c', 'source4/torture/vfs/vfs.c'] },
  { target: 'smbd', output: 'bin/default/source3/smbd/smbd', sources: ['source3/smbd/server.c'] },
];

describe('linksFor', () => {
  it('takes every long-running link of a changed source, a subsystem linked into several modules included', () => {
    expect(linksFor(links, ['source4/nbt_server/wins/wins_hook.c'], services).map((l) => l.target)).toEqual(['service_nbtd', 'service_wrepl']);
  });

  it('leaves out programs that are not long-running, and links that take none of the sources', () => {
    expect(linksFor(links, ['source4/torture/vfs/vfs.c'], services)).toEqual([]);
    expect(linksFor(links, ['source3/smbd/server.c', 'lib/none.c'], services).map((l) => l.output)).toEqual(['bin/default/source3/smbd/smbd']);
  });

  it('takes every link of the sources when the package names no services', () => {
    expect(linksFor(links, ['source4/torture/vfs/vfs.c'], undefined).map((l) => l.target)).toEqual(['smbtorture']);
  });
});

describe('linkStrategyOf', () => {
  it('links waf profiles target by target, gyp make profiles by their whole goal, cmake not at all', async () => {
    const { linkStrategyOf, profiles } = await import('../pipeline/src/corpus/compile-only/index.ts');
    const samba = linkStrategyOf(profiles.samba!)!;
    expect(samba.lists).toBe(true);
    expect(samba.argv(['service_nbtd', 'ldb_dirsync'], 2)).toEqual(['python3', 'buildtools/bin/waf', 'build', '-j2', '--targets=service_nbtd,ldb_dirsync']);
    const node = linkStrategyOf(profiles.nodejs!)!;
    expect(node.lists).toBe(false);
    // the goal the compile database was read from (make -n), without its verbosity
    expect(node.argv([], 2)).toEqual(['make', '-C', 'out', '-j2', 'BUILDTYPE=Release']);
    expect(node.configuration).toBe('out/Makefile');
    expect(linkStrategyOf(profiles.mariadb!)).toBeNull();
  });
});

const fixture = fileURLToPath(new URL('./fixtures/walk-confirm/', import.meta.url));
const server = { longRunning: ['^server$'], programs: [], note: 'walkserver' };

/**
 * The fixture with `series` applied as a configured tree (its Makefile is the configuration;
 * nothing built), walked backwards with a BuiltCopyBinaries (make strategy) kept in `built`.
 */
async function walk(root: string, configured: string, built: string, series: readonly string[], notUnits: readonly string[] = []): Promise<{ verdicts: Map<string, WalkVerdict>; lines: string[] }> {
  const entries = parseSeries(await readFile(join(configured, 'debian/patches/series'), 'utf8'));
  const dry = await execa('make', ['-n', '-C', configured], { env: { CC: 'cc' } });
  const database = fromMakeDryRun(dry.stdout, configured, configured);
  const tree = join(root, `walk-${Math.random().toString(36).slice(2)}`);
  await copyTree(configured, tree);
  const lines: string[] = [];
  const binaries = new BuiltCopyBinaries({ strategy: makeStrategy('.', []), configured, walkTree: tree, database, built, work: join(root, 'bins'), jobs: 2, services: server, log: (l) => lines.push(l) });
  const verdicts = new Map<string, WalkVerdict>();
  try {
    await walkSeries({
      tree,
      series: entries,
      database: database.map((u) => rebase(u, configured, tree)),
      units: entries.filter((e) => !notUnits.includes(e.path)).map((e) => ({ id: e.path, start: e.index, count: 1 })),
      scratch: join(root, 'scratch'),
      objectsCache: join(root, 'objects'),
      jobs: 2,
      limit: 10,
      services: server,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      log: (l) => lines.push(l),
      undone: (entry, files) => binaries.undone(entry.path, files),
      confirm: (unit, v, measured) => binaries.confirmVerdict(unit.id, v, measured),
      done: async (unit, v) => {
        verdicts.set(unit.id, v);
      },
    });
  } finally {
    await binaries.close();
    await rm(tree, { recursive: true, force: true });
  }
  expect(verdicts.size, lines.join('\n')).toBe(series.length - notUnits.length);
  return { verdicts, lines };
}

async function configuredTree(root: string, series: readonly string[]): Promise<string> {
  const configured = join(root, 'configured');
  await cp(join(fixture, 'tree'), configured, { recursive: true });
  await cp(join(fixture, 'patches'), join(configured, 'debian/patches'), { recursive: true });
  await writeFile(join(configured, 'debian/patches/series'), series.join('\n') + '\n');
  for (const entry of parseSeries(series.join('\n') + '\n')) await applySeriesPatch(configured, entry);
  return configured;
}

describe('a kept built copy of a configured tree (make strategy: real build through the wrapper, wfpatch-ctl check)', () => {
  beforeAll(async () => {
    await ensureCreateDiffObject();
    await ensureWfpatchCtl();
  });

  it('confirms every unit against the binary linked from the series before it, and is kept for the next run', { timeout: 600_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'built-copy-'));
    try {
      const series = ['0001-clamp-negative.patch', '0002-greet-empty-buffer.patch', '0003-clamp-upper.patch', '0004-raise-clamp-max.patch'];
      const configured = await configuredTree(root, series);
      const built = join(root, 'built');
      const first = await walk(root, configured, built, series);
      for (const [id, v] of first.verdicts) {
        expect(v, `${id}: ${JSON.stringify(v)}\n${first.lines.join('\n')}`).toMatchObject({
          verdict: 'kpatchable',
          checkedOn: expect.stringMatching(/series before it, its long-running files linked/),
          confirmation: { confirmed: true, binaries: ['server'], how: expect.stringMatching(/^ok: server\.wfp against server .*make links for it from the series before the unit/) },
        });
      }
      expect(first.lines.filter((l) => l.includes('copying the configured tree'))).toHaveLength(1);
      // the configured tree itself is never built in: the copy was bind-mounted over its path
      await expect(readFile(join(configured, 'server'))).rejects.toThrow();
      // where the copy was left (0001 undone: the series before it) is recorded
      const state = JSON.parse(await readFile(join(built, 'state.json'), 'utf8')) as { files: string[] };
      expect(state.files).toEqual(expect.arrayContaining(['src/util.c', 'src/greet.c', 'src/util.h']));
      // A second run walks from the whole series again: the copy is brought back and kept.
      const second = await walk(root, configured, built, series);
      expect(second.lines.filter((l) => l.includes('copying the configured tree'))).toHaveLength(0);
      for (const [id, v] of second.verdicts) expect(v, id).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: true } });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('confirms a unit that adds a function in one file and calls it from another (resolved within the bundle)', { timeout: 600_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'built-copy-'));
    try {
      // util.c's patch object calls triple(), which the binary before the unit lacks and only
      // greet.c's patch object defines — as nodejs CVE-2025-23166, whose new DeriveBits
      // parameter gives every caller in other files a new mangled name.
      const series = ['0005-triple-in-greet.patch'];
      const configured = await configuredTree(root, series);
      const { verdicts, lines } = await walk(root, configured, join(root, 'built'), series);
      expect(verdicts.get('0005-triple-in-greet.patch'), lines.join('\n')).toMatchObject({
        verdict: 'kpatchable',
        confirmation: { confirmed: true, binaries: ['server'], how: expect.stringMatching(/^ok: server\.wfp against server/) },
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("rebuilds what includes a header the walk undid, though this Makefile lists no header dependencies", { timeout: 600_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'built-copy-'));
    try {
      // greet last: the copy is built once with 0004's header; undoing 0004 changes only util.h.
      const series = ['0001-clamp-negative.patch', '0003-clamp-upper.patch', '0004-raise-clamp-max.patch', '0002-greet-empty-buffer.patch'];
      const configured = await configuredTree(root, series);
      const { verdicts, lines } = await walk(root, configured, join(root, 'built'), series);
      // with 0004's clamp() still in the binary, create-diff-object --binary would refuse the unit's "before" code
      expect(verdicts.get('0004-raise-clamp-max.patch'), lines.join('\n')).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: true, binaries: ['server'] } });
      for (const [id, v] of verdicts) expect(v, id).toMatchObject({ confirmation: { confirmed: true } });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('leaves a unit whose build fails, and every unit before it, kpatch-able but unconfirmed with make\'s error', { timeout: 600_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'built-copy-'));
    try {
      const series = ['track-header-deps.patch', '0001-clamp-negative.patch', '0002-clamp-limit-header.patch', '0002-greet-empty-buffer.patch'];
      const configured = await configuredTree(root, series);
      const { verdicts } = await walk(root, configured, join(root, 'built'), series, ['track-header-deps.patch']);
      expect(verdicts.get('0002-greet-empty-buffer.patch')).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: true } });
      const failed = /^on the series before the unit, its long-running files linked: the make build before 0002-clamp-limit-header\.patch failed: .*clamp-limit\.h/;
      for (const id of ['0002-clamp-limit-header.patch', '0001-clamp-negative.patch']) {
        expect(verdicts.get(id), id).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: false, binaries: [], how: expect.stringMatching(failed) } });
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
