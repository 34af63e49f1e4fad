import { describe, expect, it } from 'vitest';
import { packageRow, ratios, reasonHistogram, reasonKind, totalRow, type UnitResult, type UnitVerdict, type Verdict } from '../pipeline/src/corpus/results.ts';
import { formatSeconds, paperTable, renderReport } from '../pipeline/src/corpus/table.ts';
import { verdictOf } from '../pipeline/src/corpus/classify-unit.ts';
import { liveWithNewData } from '../pipeline/src/corpus/new-data.ts';
import type { ObjectReport } from '../pipeline/src/report/types.ts';

function unit(pkg: string, id: string, verdict: Verdict, cves: string[] = [], reason = ''): UnitResult {
  return { package: pkg, unit: id, cves, views: ['series'], base: 'series-prefix', appliedAt: 0, verdict, reason, reasons: reason ? [reason] : [], objects: 1, seconds: 2, key: id };
}

const results: UnitResult[] = [
  unit('memcached', 'a', 'kpatchable', ['CVE-2023-46852']),
  unit('memcached', 'b', 'text-only', ['CVE-2023-46853'], 'proto_text.o: process_command: changes a function with a static local'),
  unit('memcached', 'c', 'not-text-only', [], 'memcached.o: settings: changed .data'),
  unit('memcached', 'd', 'no-code'),
  unit('samba', 'CVE-2018-14628', 'failed', ['CVE-2018-14628'], 'original build failed (exit 2)'),
  unit('samba', 'e', 'kpatchable'),
  unit('samba', 'f', 'kpatchable'),
];

describe('corpus aggregation', () => {
  it('counts each column per package, with CVE units in parentheses', () => {
    const row = packageRow('memcached', '1.6.18-1+deb12u1', results, 120);
    expect(row).toMatchObject({
      units: { all: 4, cve: 2 },
      noCode: { all: 1, cve: 0 },
      code: { all: 3, cve: 2 },
      textOnly: { all: 2, cve: 2 },
      kpatchable: { all: 1, cve: 1 },
      failed: { all: 0, cve: 0 },
      seconds: 120,
    });
    // text-only among code patches, kpatch-able among text-only (the paper's two ratios).
    expect(ratios(row)).toEqual({
      textOnly: { all: 67, cve: 100 },
      kpatchableOfTextOnly: { all: 50, cve: 50 },
      kpatchableOfCode: { all: 33, cve: 50 },
      // b and c were classified without saying whether new data would do: not measured
      liveWithNewDataOfCode: { all: null, cve: null },
    });
  });

  it('counts failed units as code patches that are not text-only (never dropped)', () => {
    const samba = packageRow('samba', 'x', results, 0);
    expect(samba.failed).toEqual({ all: 1, cve: 1 });
    expect(samba.code).toEqual({ all: 3, cve: 1 });
    expect(ratios(samba).textOnly).toEqual({ all: 67, cve: 0 });
  });

  it('totals add up and empty denominators give no percentage', () => {
    const rows = [packageRow('memcached', '', results, 100), packageRow('samba', '', results, 50), packageRow('nodejs', '', results, 0)];
    const total = totalRow(rows);
    expect(total).toMatchObject({ units: { all: 7, cve: 3 }, code: { all: 6, cve: 3 }, textOnly: { all: 4, cve: 2 }, kpatchable: { all: 3, cve: 1 }, seconds: 150 });
    expect(ratios(rows[2]!).textOnly).toEqual({ all: null, cve: null });
  });

  it('groups reasons for "no" by kind, without object and symbol names', () => {
    expect(reasonKind('memcached.o: settings: changed .data')).toBe('changed .data');
    // the cache's build folders are left out, so one reason reads the same for every build
    expect(reasonKind('src/auth/.libs/db-passwd-file.o: t_normpath: t_normpath does not resolve in /var/cache/wfpatch/wfbuild/orig/b163ac325401e4043b0a8721/linked/src/auth/.libs/auth: not defined')).toBe('t_normpath does not resolve in src/auth/.libs/auth: not defined');
    // a local static's number (GCC's, per file) is no part of the kind
    expect(reasonKind('build/ospfd/ospf_te.o: _xrefdata.278: data object _xrefdata.278: initializer changed (pointer at byte 24)')).toBe('data object _xrefdata.N: initializer changed (pointer at byte 24)');
    expect(reasonKind('build/bgpd/bgp_attr.o: _xrefdata.194: data object _xrefdata.194: initializer changed (pointer at byte 24)')).toBe('data object _xrefdata.N: initializer changed (pointer at byte 24)');
    expect(reasonKind('a.o: keyimpls: data object keyimpls: size changed from 176 to 184 bytes')).toBe('data object keyimpls: size changed from 176 to 184 bytes');
    expect(reasonKind('build/bgpd/bgp_attr.o: adds entries to xref_array (16 bytes), a section the linker collects for the program to walk at start-up (__start_xref_array), so the running program never sees the change')).toBe('adds entries to xref_array (N bytes), a section the linker collects for the program to walk at start-up (__start_xref_ar');
    expect(reasonHistogram(results)).toEqual([
      { reason: 'failed: original build failed (exit 2)', units: 1 },
      { reason: 'not-text-only: changed .data', units: 1 },
      { reason: 'text-only: changes a function with a static local', units: 1 },
    ]);
  });
});

describe('corpus rendering', () => {
  it('renders the paper table with a total column and percentages', () => {
    const table = paperTable([packageRow('memcached', '', results, 100), packageRow('samba', '', results, 4000)]);
    const lines = table.split('\n');
    expect(lines[0]).toBe('| | memcached | samba | **total** |');
    expect(lines).toContain('| patches (CVE) | 4 (2) | 3 (1) | 7 (3) |');
    expect(lines).toContain('| kpatch-able | 1 (1) | 2 (0) | 3 (1) |');
    expect(lines).toContain('| text-only / code | 67% (100%) | 67% (0%) | 67% (67%) |');
    expect(lines).toContain('| kpatch-able / text-only | 50% (50%) | 100% (–) | 75% (50%) |');
    expect(lines).toContain('| time | 2 min | 67 min | 68 min |');
  });

  it('renders every unit with its verdict and reason, escaping table syntax', () => {
    const md = renderReport({ title: 'T', intro: 'I', rows: [packageRow('memcached', '', results, 1)], results: [unit('memcached', 'a|b', 'text-only', [], 'x: y: has | pipe')], notRun: [{ package: 'nodejs', why: 'not requested' }] });
    expect(md).toContain('| memcached | a\\|b | – | series | text-only | 1 | 2 s | x: y: has \\| pipe |');
    expect(md).toContain('Not run: nodejs (not requested).');
    expect(md).toContain('## Why not');
    expect(formatSeconds(7200)).toBe('2.0 h');
  });
});

describe('pending units', () => {
  it('are counted in their own row, outside the ratios', () => {
    const rows = [packageRow('apache2', '', [unit('apache2', 'a', 'kpatchable'), unit('apache2', 'b', 'pending', ['CVE-2007-1742'])], 0)];
    expect(rows[0]).toMatchObject({ units: { all: 2, cve: 1 }, code: { all: 1, cve: 0 }, pending: { all: 1, cve: 1 } });
    expect(ratios(rows[0]!).textOnly.all).toBe(100);
    expect(paperTable(rows)).toContain('| not classified yet | 1 (1) | 1 (1) |');
    expect(paperTable([packageRow('memcached', '', results, 0)])).not.toContain('not classified yet');
  });
});

describe('live-patchable with new data', () => {
  const carried = (name: string): ObjectReport => ({
    object: 'modules/core/mod_macro.c',
    source: 'modules/core/mod_macro.c',
    binaries: [],
    verdicts: [{ binary: '', outcome: 'not-text-only', exitCode: 0, verdict: { liveWithNewData: true, newDataCarried: [{ name, reason: 'zero-initialised' }] } }],
  });
  const changedData: ObjectReport = { object: 'sasl.c', source: 'sasl.c', binaries: [], verdicts: [{ binary: '', outcome: 'not-text-only', exitCode: 4, verdict: { liveWithNewData: false } }] };
  const patched: ObjectReport = { object: 'util.c', source: 'util.c', binaries: [], verdicts: [{ binary: '', outcome: 'patch', exitCode: 0, verdict: {} }] };

  it('counts a unit whose only data change is new variables carried in the patch, not one that changes existing data', () => {
    expect(liveWithNewData('not-text-only', [carried('ignore_empty'), patched])).toBe(true);
    expect(liveWithNewData('not-text-only', [carried('ignore_empty'), changedData])).toBe(false);
    expect(liveWithNewData('not-text-only', [{ ...carried('x'), layoutChanges: [{ type: 'struct s', what: 'size' }] }])).toBe(false);
    expect(liveWithNewData('not-text-only', [{ ...patched, verdicts: [{ binary: '', outcome: 'new-object', exitCode: null, verdict: null }] }])).toBe(false);
    expect(liveWithNewData('kpatchable', [patched])).toBe(true);
    expect(liveWithNewData('not-kpatchable', [patched])).toBe(false);
  });

  it('verdictOf keeps the paper\'s verdict (not text-only) and names the carried variables', () => {
    const v = verdictOf({ outcome: 'not-text-only', textOnly: false, notes: [], objects: [carried('ignore_empty')], reasons: [{ object: 'modules/core/mod_macro.c', kind: 'new-data', symbol: 'ignore_empty', what: 'new data object ignore_empty (carried in the patch, starts from its initial value)' }] });
    expect(v.verdict).toBe('not-text-only');
    expect(v.liveWithNewData).toBe(true);
    expect(v.reason).toMatch(/live-patchable with new data \(ignore_empty carried in the patch\)$/);
    const w = verdictOf({ outcome: 'not-text-only', textOnly: false, notes: [], objects: [changedData], reasons: [{ object: 'sasl.c', kind: 'data', symbol: 'server_callbacks.6', what: 'size changed' }] });
    expect(w).toMatchObject({ verdict: 'not-text-only', liveWithNewData: false, reason: 'sasl.c: server_callbacks.6: size changed' });
  });

  it('adds a column next to the paper\'s, with its ratio among code patches once every code unit is measured', () => {
    const with_ = (u: UnitResult, live: boolean): UnitResult => ({ ...u, liveWithNewData: live });
    const units = [
      with_(unit('apache2', 'k', 'kpatchable', ['CVE-2007-1742']), true),
      with_(unit('apache2', 'm', 'not-text-only', [], 'mod_macro.c: ignore_empty: new data'), true),
      with_(unit('apache2', 's', 'not-text-only', [], 'sasl.c: changed .data'), false),
      unit('apache2', 'd', 'no-code'),
    ];
    const row = packageRow('apache2', '', units, 0);
    expect(row.textOnly).toEqual({ all: 1, cve: 1 });
    expect(row.liveWithNewData).toEqual({ all: 2, cve: 1 });
    expect(ratios(row).liveWithNewDataOfCode).toEqual({ all: 67, cve: 100 });
    const table = paperTable([row]);
    expect(table).toContain('| live-patchable with new data | 2 (1) | 2 (1) |');
    expect(table).toContain('| live-patchable with new data / code | 67% (100%) | 67% (100%) |');
    // an older result without the answer makes the count a lower bound
    const old = packageRow('apache2', '', [...units, unit('apache2', 'o', 'not-text-only')], 0);
    expect(paperTable([old])).toContain('| live-patchable with new data | 2 (1)+? |');
    expect(ratios(old).liveWithNewDataOfCode.all).toBeNull();
  });
});

describe('confirmed against the binary', () => {
  it('a kpatch-able unit whose bundle fails the dry run becomes text-only with the reason; passing ones are counted', async () => {
    const { confirmVerdict } = await import('../pipeline/src/corpus/confirm.ts');
    const base: UnitVerdict = { verdict: 'kpatchable', reason: '', reasons: [], objects: 1, liveWithNewData: true };
    const ok = confirmVerdict(base, [{ binary: 'memcached', ok: true, line: 'ok: memcached.wfp against memcached' }]);
    expect(ok).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: true, binaries: ['memcached'] } });
    const bad = confirmVerdict(base, [
      { binary: 'slapd', ok: true, line: 'ok' },
      { binary: 'libldap.so.2', ok: false, line: 'unresolved symbol ber_gone (not in libldap.so.2, not exported by the 3 libraries it needs)' },
    ]);
    expect(bad).toMatchObject({ verdict: 'text-only', liveWithNewData: false, confirmation: { confirmed: false } });
    expect(bad.reason).toBe('libldap.so.2: wfpatch-ctl check: unresolved symbol ber_gone (not in libldap.so.2, not exported by the 3 libraries it needs)');
    expect(confirmVerdict(base, [])).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: false, how: 'no bundle was linked to check' } });
    // other verdicts pass through untouched
    const nt = { verdict: 'not-text-only' as const, reason: 'x', reasons: [], objects: 1 };
    expect(confirmVerdict(nt, [{ binary: 'b', ok: false, line: 'no' }])).toBe(nt);

    const row = packageRow('memcached', '', [{ ...unit('memcached', 'a', 'kpatchable'), confirmation: ok.confirmation! }, unit('memcached', 'b', 'kpatchable')], 0);
    expect(row.confirmed).toEqual({ all: 1, cve: 0 });
    expect(paperTable([row])).toContain('| … confirmed against the binary | 1 (0) | 1 (0) |');
  });
});

describe('per-binary verdicts', () => {
  it('a change confined to a program that is not the service does not make the server fix not text-only (samba CVE-2025-9640)', async () => {
    const { defaultServices } = await import('../pipeline/src/corpus/services.ts');
    const samba = defaultServices['samba']!;
    const server: ObjectReport = { object: 'source3/modules/vfs_streams_xattr.c', source: 'source3/modules/vfs_streams_xattr.c', binaries: [], verdicts: [{ binary: '', outcome: 'patch', exitCode: 0, verdict: {} }] };
    const torture: ObjectReport = { object: 'source4/torture/vfs/streams_xattr.c', source: 'source4/torture/vfs/streams_xattr.c', binaries: [], verdicts: [{ binary: '', outcome: 'new-object', exitCode: null, verdict: null }] };
    const reasons = [{ object: torture.object, kind: 'new-object', symbol: null, what: 'new object file (the unit adds source4/torture/vfs/streams_xattr.c): new code and data cannot be compared' }];
    // without services: the whole unit is not text-only, as before
    expect(verdictOf({ outcome: 'not-text-only', textOnly: false, reasons, notes: [], objects: [server, torture] }).verdict).toBe('not-text-only');
    const v = verdictOf({ outcome: 'not-text-only', textOnly: false, reasons, notes: [], objects: [server, torture] }, samba);
    expect(v.verdict).toBe('kpatchable');
    expect(v.perBinary).toEqual([
      { binary: 'the service', longRunning: true, verdict: 'kpatchable', reason: '' },
      { binary: 'smbtorture', longRunning: false, verdict: 'not-text-only', reason: expect.stringContaining('new object file') },
    ]);
    expect(v.reason).toMatch(/^not counted, not long-running: smbtorture: not-text-only/);
    // only the torture test: no long-running binary changes
    const only = verdictOf({ outcome: 'not-text-only', textOnly: false, reasons, notes: [], objects: [torture] }, samba);
    expect(only.verdict).toBe('no-code');
    expect(only.reason).toMatch(/^no long-running binary changes, only smbtorture/);
    // a data change in the server still counts
    const dataServer: ObjectReport = { ...server, verdicts: [{ binary: '', outcome: 'not-text-only', exitCode: 4, verdict: {} }] };
    const w = verdictOf({ outcome: 'not-text-only', textOnly: false, reasons: [{ object: server.object, kind: 'data', symbol: 'x', what: 'changed' }, ...reasons], notes: [], objects: [dataServer, torture] }, samba);
    expect(w.verdict).toBe('not-text-only');
    expect(w.reason).toMatch(/^source3\/modules\/vfs_streams_xattr\.c: x: changed; not counted/);
  });

  it('the full pipeline names real binaries: long-running ones by the manifest, per binary', async () => {
    const { defaultServices, groupByBinary } = await import('../pipeline/src/corpus/services.ts');
    const o: ObjectReport = { object: 'x.o', source: 'x.c', binaries: ['memcached', 'sizes'], verdicts: [{ binary: 'memcached', outcome: 'patch', exitCode: 0, verdict: {} }, { binary: 'sizes', outcome: 'patch', exitCode: 0, verdict: {} }] };
    expect(groupByBinary(defaultServices['memcached']!, [o], []).map((g) => [g.binary, g.longRunning])).toEqual([['memcached', true], ['sizes', false]]);
  });
});

describe('units without which no tree builds', () => {
  it('are "not measurable", classified from what they change and saying so, outside the ratios; code changes stay failed', async () => {
    const { unbuildableVerdict } = await import('../pipeline/src/corpus/unbuildable.ts');
    const why = 'original build of openldap 2.5.13+dfsg-5 failed (debian/rules build, exit 2): … dh_auto_build: error: cd contrib/slapd-modules/passwd && make';
    const v = unbuildableVerdict([{ path: 'contrib/slapd-modules/passwd/Makefile', kind: 'build-system' }, { path: 'contrib/slapd-modules/nops/Makefile', kind: 'build-system' }], why);
    expect(v).toMatchObject({ verdict: 'not-measurable', objects: 0 });
    expect(v!.reason).toMatch(/^classified from what it changes: no tree without this unit builds \(original build of openldap .*\), so no running binary exists without it to patch; it changes only build files \(contrib\/slapd-modules\/passwd\/Makefile, contrib\/slapd-modules\/nops\/Makefile\)$/);
    expect(unbuildableVerdict([{ path: 'servers/slapd/sasl.c', kind: 'c-source' }, { path: 'Makefile.in', kind: 'build-system' }], why)).toBeNull();
    const row = packageRow('openldap', '', [{ ...unit('openldap', 'contrib-makefiles', 'not-measurable'), reason: v!.reason }, unit('openldap', 'k', 'kpatchable')], 0);
    expect(row).toMatchObject({ code: { all: 1, cve: 0 }, notMeasurable: { all: 1, cve: 0 }, failed: { all: 0, cve: 0 } });
    expect(ratios(row).textOnly.all).toBe(100);
    expect(paperTable([row])).toContain('| not measurable (reason not ours) | 1 (0) | 1 (0) |');
  });
});

describe('a clock that went backwards', () => {
  it('stops the run before a patched build could miss the patch (cached builds newer than the clock)', async () => {
    const { checkClock } = await import('../pipeline/src/corpus/clock.ts');
    const { mkdtemp, mkdir, rm, utimes } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'corpus-clock-'));
    try {
      await mkdir(join(dir, 'build1'));
      const built = new Date('2026-11-30T13:00:00Z');
      await utimes(join(dir, 'build1'), built, built);
      await expect(checkClock([dir], built.getTime() + 60_000)).resolves.toBeUndefined();
      await expect(checkClock([dir], new Date('2024-03-06T15:11:40Z').getTime())).rejects.toThrow(/system clock reads 2024-03-06.*earlier than the cached builds .*2026-11-30.*"no-code"/);
      await expect(checkClock([join(dir, 'missing')], 0)).resolves.toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("a unit's patches concatenated", () => {
  it('keep the first header and drop the later ones, which would sit between two diffs', async () => {
    const { withoutHeader } = await import('../pipeline/src/corpus/tree.ts');
    const { triagePatch } = await import('../pipeline/src/triage/index.ts');
    const a = 'From: A <a@x>\nSubject: CVE-2023-28366\n---\ndiff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n';
    const b = 'From: A <a@x>\nSubject: CVE-2023-28366 regression\n\nIndex: y.c\n--- a/y.c\n+++ b/y.c\n@@ -1 +1 @@\n-d\n+e\n';
    expect(withoutHeader(b).startsWith('Index: y.c\n')).toBe(true);
    expect(withoutHeader('no diff at all\n')).toBe('no diff at all\n');
    expect(triagePatch(a + withoutHeader(b), 'unit').files.map((f) => f.path)).toEqual(['x.c', 'y.c']);
  });

  it("one file of several format-patch mails (dovecot's CVE-2024-23184) loses the later mails' headers too", async () => {
    const { unitPatchFile } = await import('../pipeline/src/corpus/tree.ts');
    const { sha256 } = await import('../pipeline/src/corpus/units.ts');
    const { triagePatch } = await import('../pipeline/src/triage/index.ts');
    const { mkdtemp, mkdir, readFile, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const mail = (sha: string, file: string) =>
      `From ${sha} Mon Sep 17 00:00:00 2001\nFrom: A <a@x>\nSubject: [PATCH] fix ${file}\n\n---\n ${file} | 2 +-\n\ndiff --git a/${file} b/${file}\n--- a/${file}\n+++ b/${file}\n@@ -1 +1 @@\n-a\n+b\n-- \n2.39.2\n\n`;
    const text = mail('a'.repeat(40), 'src/x.c') + mail('b'.repeat(40), 'src/y.c');
    const dir = await mkdtemp(join(tmpdir(), 'corpus-mails-'));
    try {
      await mkdir(join(dir, 'debian', 'patches'), { recursive: true });
      await writeFile(join(dir, 'debian', 'patches', 'CVE-X.patch'), text);
      const unit = { id: 'CVE-X.patch', start: 0, patches: ['CVE-X.patch'], strip: [1], sha256: sha256([text]), cves: [], cveSources: [], views: ['update'], why: '' };
      const manifest = { package: 'dovecot', baseVersion: '1', units: [unit] } as unknown as Parameters<typeof unitPatchFile>[0];
      const file = await unitPatchFile(manifest, unit as unknown as Parameters<typeof unitPatchFile>[1], dir, join(dir, 'out'));
      const joined = await readFile(file, 'utf8');
      // the first mail's header only: no mail header between two diffs
      expect(joined.match(/^From [0-9a-f]{40} /gm)).toHaveLength(1);
      expect(joined.match(/^Subject: /gm)).toHaveLength(1);
      expect(triagePatch(joined, 'unit').files.map((f) => f.path)).toEqual(['src/x.c', 'src/y.c']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
