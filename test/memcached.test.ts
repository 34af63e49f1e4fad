/**
 * wfbuild on a real Debian package: memcached 1.6.18-1 (Debian 12) and the three patches that
 * 1.6.18-1+deb12u1 adds, fetched from the registry at test time (never committed), plus one
 * code-only patch of our own that must produce a bundle. Slow the first time (one full
 * `debian/rules build` through the wrapper, a few minutes on 2 shared cores); the source and
 * the original build are cached under cacheRoot/wfbuild, so later runs only do the patched
 * rebuilds.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { classifyPatch, type Report } from '../pipeline/src/stages/index.ts';
import { fetchPackage } from '../pipeline/src/stages/source.ts';
import { readBundleMeta } from '../pipeline/src/bundle/index.ts';
import { cacheRoot } from '../pipeline/src/paths.ts';

const ourPatch = new URL('./fixtures/memcached/0001-safe_strcpy-empty-destination.patch', import.meta.url).pathname;
const debianPatches = ['0008-CVE-2026-47783-CVE-2026-47784.patch', '0009-CVE-2023-46852.patch', 'CVE-2023-46853.patch'];

let scratch: string;
const reports: Record<string, Report> = {};

async function classify(patch: string): Promise<Report> {
  const name = patch.slice(patch.lastIndexOf('/') + 1);
  return classifyPatch({ patch, package: 'memcached=1.6.18-1', out: join(scratch, 'out', name), bundles: true, renderer: 'silent' });
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-memcached-'));
  const fixed = await fetchPackage('memcached=1.6.18-1+deb12u1', join(cacheRoot, 'wfbuild/sources'));
  for (const name of debianPatches) await copyFile(join(fixed.dir, 'debian/patches', name), join(scratch, name));
  // One after another: the first builds (or finds) the cached original build, the rest reuse it.
  for (const name of debianPatches) reports[name] = await classify(join(scratch, name));
  reports.ours = await classify(ourPatch);
}, 3_600_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('memcached 1.6.18-1 in Debian 12 with its own build configuration', () => {
  it('built the original once and reused it for every later patch', () => {
    const keys = new Set(Object.values(reports).map((r) => r.originalBuild?.key));
    expect(keys.size).toBe(1);
    expect(reports[debianPatches[1]].originalBuild?.cached).toBe(true);
    expect(reports.ours.originalBuild?.cached).toBe(true);
    expect(reports.ours.package).toEqual({ name: 'memcached', version: '1.6.18-1' });
    expect(reports.ours.buildCommand).toBe('debian/rules build-arch');
  });

  it('0008 (SASL pwdb timing fix): compiled file, but the code is under ENABLE_SASL_PWDB, which Debian does not configure → no compiled code changed', () => {
    const r = reports[debianPatches[0]];
    expect(r.cves).toEqual(['CVE-2026-47783', 'CVE-2026-47784']);
    expect(r).toMatchObject({ outcome: 'no-compiled-code', textOnly: null, kpatchable: null, bundles: [], reasons: [] });
    // sasl_defs.c is compiled (Debian configures --enable-sasl): it was rebuilt, and its object
    // either came out identical or create-diff-object found nothing to patch.
    const mentions = [...r.notes, ...r.objects.map((o) => o.object)].join('\n');
    expect(mentions).toMatch(/memcached-sasl_defs\.o/);
    expect(r.notes.join('\n')).not.toMatch(/sasl_defs\.c: not compiled/);
  });

  it('0009 (proxy): proto_proxy.c is not compiled without --enable-proxy → no compiled code changed', () => {
    const r = reports[debianPatches[1]];
    expect(r.cves).toEqual(['CVE-2023-46852']);
    expect(r).toMatchObject({ outcome: 'no-compiled-code', objects: [], bundles: [] });
    expect(r.notes).toContain('proto_proxy.c: not compiled by this build (debian/rules build-arch)');
  });

  it('CVE-2023-46853 (proxy struct change in proxy.h): nothing that includes it is compiled → no compiled code changed', () => {
    const r = reports[debianPatches[2]];
    expect(r.cves).toEqual(['CVE-2023-46853']);
    expect(r.files.map((f) => f.kind)).toEqual(['header', 'c-source']);
    expect(r).toMatchObject({ outcome: 'no-compiled-code', objects: [], bundles: [] });
    expect(r.notes).toContain('proxy_request.c: not compiled by this build (debian/rules build-arch)');
  });

  it('a code-only patch of util.c: text-only, kpatch-able, one bundle for /usr/bin/memcached (memcached-debug is not shipped)', async () => {
    const r = reports.ours;
    expect(r, JSON.stringify(r.reasons)).toMatchObject({ outcome: 'kpatchable', textOnly: true, kpatchable: true });
    expect(r.objects.map((o) => o.object)).toEqual(['memcached-util.o']);
    expect(r.objects[0].verdicts[0]).toMatchObject({ binary: 'memcached', outcome: 'patch' });
    expect(r.notes.join('\n')).toMatch(/memcached_debug-util\.o: linked into memcached-debug, which the package does not install/);
    expect(r.bundles).toHaveLength(1);
    expect(r.bundles[0]).toMatchObject({ binary: 'memcached', installedPath: '/usr/bin/memcached', file: 'memcached.wfp' });
    const bundle = join(scratch, 'out', '0001-safe_strcpy-empty-destination.patch', 'memcached.wfp');
    const meta = await readBundleMeta(bundle, scratch);
    expect(meta?.target).toEqual({ path: '/usr/bin/memcached', buildId: r.bundles[0].buildId });
    const symbols = (await execa('readelf', ['-sW', bundle])).stdout;
    // The new safe_strcpy is defined in the bundle; the old one is the undefined symbol the
    // .wfpatch.funcs record points at.
    expect(symbols).toMatch(/FUNC\s+LOCAL\s+DEFAULT\s+\d+\s+safe_strcpy$/m);
    expect(symbols).toMatch(/FUNC\s+GLOBAL\s+DEFAULT\s+UND\s+safe_strcpy$/m);
    expect((await execa('readelf', ['-SW', bundle])).stdout).toContain('.wfpatch.funcs');
    expect(await readdir(join(scratch, 'out', '0001-safe_strcpy-empty-destination.patch'))).toEqual(['memcached.wfp', 'report.json']);
  });
});

/**
 * The same SASL patch where its code is compiled: memcached configured by hand with
 * --enable-sasl-pwdb (Debian's configuration does not enable it). A second original build,
 * cached under its own key (the build command is part of it).
 */
describe('memcached 1.6.18-1 configured with --enable-sasl-pwdb', () => {
  let r: Report;
  const buildCmd = './configure --prefix=/usr --enable-sasl --enable-sasl-pwdb --enable-tls && make -j2';
  beforeAll(async () => {
    r = await classifyPatch({
      patch: join(scratch, debianPatches[0]),
      package: 'memcached=1.6.18-1',
      buildCmd,
      out: join(scratch, 'out', 'pwdb'),
      renderer: 'silent',
    });
  }, 3_600_000);

  it('0008 changes sasl_server_userdb_checkpass only: text-only, kpatch-able, a bundle for /usr/bin/memcached', async () => {
    expect(r, JSON.stringify(r.reasons)).toMatchObject({ outcome: 'kpatchable', textOnly: true, kpatchable: true, buildCommand: buildCmd });
    expect(r.objects.map((o) => o.object)).toEqual(['memcached-sasl_defs.o']);
    const verdict = r.objects[0].verdicts[0].verdict as { changedFunctions: { name: string }[]; changedData: unknown[] };
    expect(verdict.changedFunctions.map((f) => f.name)).toEqual(['sasl_server_userdb_checkpass']);
    expect(verdict.changedData).toEqual([]);
    expect(r.bundles).toHaveLength(1);
    expect(r.bundles[0]).toMatchObject({ binary: 'memcached', installedPath: '/usr/bin/memcached', file: 'memcached.wfp' });
    const meta = await readBundleMeta(join(scratch, 'out', 'pwdb', 'memcached.wfp'), scratch);
    expect(meta).toMatchObject({ patch: debianPatches[0], cves: ['CVE-2026-47783', 'CVE-2026-47784'], target: { path: '/usr/bin/memcached', buildId: r.bundles[0].buildId } });
  });
});

/**
 * The two proxy patches where their code is compiled: memcached configured with
 * --enable-proxy (the vendored Lua and mcmc built first). One is an ordinary code fix, the
 * other adds a member in the middle of struct mcp_parser_s (proxy.h): the layout check must
 * catch what a function-level diff alone would call patchable.
 */
describe('memcached 1.6.18-1 configured with --enable-proxy', () => {
  const buildCmd = 'make -C vendor && ./configure --prefix=/usr --enable-sasl --enable-tls --enable-proxy && make -j2';
  const proxy: Record<string, Report> = {};
  beforeAll(async () => {
    for (const name of debianPatches.slice(1)) {
      proxy[name] = await classifyPatch({ patch: join(scratch, name), package: 'memcached=1.6.18-1', buildCmd, out: join(scratch, 'out', `proxy-${name}`), renderer: 'silent' });
    }
  }, 3_600_000);

  it('0009 changes proxy_process_command only: text-only, kpatch-able, a bundle for /usr/bin/memcached', () => {
    const r = proxy[debianPatches[1]];
    expect(r, JSON.stringify(r.reasons)).toMatchObject({ outcome: 'kpatchable', textOnly: true, kpatchable: true });
    expect(r.objects.map((o) => o.object)).toEqual(['memcached-proto_proxy.o']);
    const verdict = r.objects[0].verdicts[0].verdict as { changedFunctions: { name: string }[] };
    expect(verdict.changedFunctions.map((f) => f.name)).toEqual(['proxy_process_command']);
    expect(r.bundles[0]).toMatchObject({ binary: 'memcached', installedPath: '/usr/bin/memcached' });
  });

  it('CVE-2023-46853 moves the members of struct mcp_parser_s: not text-only, naming the struct and the member', () => {
    const r = proxy[debianPatches[2]];
    expect(r).toMatchObject({ outcome: 'not-text-only', textOnly: false, kpatchable: false, bundles: [] });
    const layout = r.reasons.filter((x) => x.kind === 'layout' && x.symbol === 'struct mcp_parser_s');
    expect(layout.map((x) => x.object)).toContain('memcached-proxy_request.o');
    expect(layout[0].what).toMatch(/^data layout of struct mcp_parser_s changed: size 96 → 104 bytes; member endlen added; vlen offset 28 → 32/);
  });
});
