import { describe, expect, it } from 'vitest';
import { compareDebianVersions, upstreamVersion } from '../pipeline/src/corpus/debversion.ts';
import { parseSeries } from '../pipeline/src/corpus/series.ts';
import { cveIds, dep3Header, patchCves } from '../pipeline/src/corpus/cve.ts';
import { buildUnits, changeOf, groupSeries } from '../pipeline/src/corpus/units.ts';
import { changelogUpdates, parseChangelog } from '../pipeline/src/corpus/changelog.ts';
import { parseFetchFailures, parseMadison, parseShowsrc } from '../pipeline/src/corpus/registry.ts';
import { checkManifest, markChangelogUpdates, readManifest, corpusPackages } from '../pipeline/src/corpus/manifest.ts';
import { UserError } from '../pipeline/src/cli/errors.ts';

describe('Debian version order', () => {
  it('orders like dpkg --compare-versions', () => {
    const sorted = ['1.6.18-1+deb12u1', '1.6.18-1', '1.6.18-1~deb12u1', '2:4.17.12+dfsg-0+deb12u2', '1:10.11.19-0+deb12u1', '1.6.9-1', '1.6.18'];
    expect([...sorted].sort(compareDebianVersions)).toEqual([
      '1.6.9-1', '1.6.18', '1.6.18-1~deb12u1', '1.6.18-1', '1.6.18-1+deb12u1', '1:10.11.19-0+deb12u1', '2:4.17.12+dfsg-0+deb12u2',
    ]);
    expect(compareDebianVersions('2:4.17.12+dfsg-0+deb12u4', '2:4.17.12+dfsg-0+deb12u2')).toBeGreaterThan(0);
    expect(compareDebianVersions('1.0a', '1.0+')).toBeLessThan(0);
    expect(compareDebianVersions('1.0', '1.00')).toBe(0);
    expect(upstreamVersion('2:4.17.12+dfsg-0+deb12u4')).toBe('4.17.12+dfsg');
    expect(() => compareDebianVersions('x', '1')).toThrow(/not a Debian version/);
  });
});

describe('series and CVE ids', () => {
  it('parses entries, -p options and the comments above them', () => {
    const series = parseSeries('a.patch\n# CVE-2018-14628: tombstones\n# https://example.invalid\nCVE-2018-14628/01-x.patch\nCVE-2018-14628/02-y.patch -p0\n\nb.diff # trailing\n');
    expect(series.map((e) => [e.path, e.strip, e.index])).toEqual([
      ['a.patch', 1, 0], ['CVE-2018-14628/01-x.patch', 1, 1], ['CVE-2018-14628/02-y.patch', 0, 2], ['b.diff', 1, 3],
    ]);
    expect(series[1]!.comments[0]).toMatch(/CVE-2018-14628/);
    expect(series[2]!.comments).toEqual([]);
    expect(() => parseSeries('x.patch -R\n')).toThrow(/unsupported patch option/);
    expect(() => parseSeries('../x.patch\n')).toThrow(/bad patch path/);
  });

  it('finds CVE ids in names and DEP-3 headers, not in the diff', () => {
    expect(cveIds('libuv/fix-cve-2024-24806 and CVE_2023_46852, CVE-2023-46852')).toEqual(['CVE-2023-46852', 'CVE-2024-24806']);
    const patch = 'Description: fix overflow\nBug-Debian: CVE-2025-9640\n---\n src/CVE-2099-0001.c | 2 +-\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-CVE-2099-0002\n+y\n';
    expect(dep3Header(patch)).not.toMatch(/2099/);
    expect(patchCves('fix.patch', patch, []).cves).toEqual(['CVE-2025-9640']);
    expect(patchCves('0008-CVE-2026-47783-CVE-2026-47784.patch', '', []).cves).toEqual(['CVE-2026-47783', 'CVE-2026-47784']);
  });
});

describe('units', () => {
  const entries = parseSeries([
    'keep.patch',
    'CVE-2018-14628/01-a.patch', 'CVE-2018-14628/02-b.patch', 'CVE-2018-14628/03-c.patch',
    'CVE-2026-21637.patch', 'CVE-2026-21637_post1.patch',
    'CVE-2026-21710.patch',
    'other/CVE-2026-21710-again.patch',
    'x.patch', 'y.patch',
  ].join('\n'));

  it('groups a CVE directory and same-CVE file names into one unit, nothing else', () => {
    expect(groupSeries(entries).map((g) => g.map((e) => e.path))).toEqual([
      ['keep.patch'],
      ['CVE-2018-14628/01-a.patch', 'CVE-2018-14628/02-b.patch', 'CVE-2018-14628/03-c.patch'],
      ['CVE-2026-21637.patch', 'CVE-2026-21637_post1.patch'],
      ['CVE-2026-21710.patch'],
      ['other/CVE-2026-21710-again.patch'],
      ['x.patch'],
      ['y.patch'],
    ]);
  });

  it('marks added and changed patches as the update view, against the baseline', () => {
    const files = entries.map((entry) => ({ entry, content: `content of ${entry.path}` }));
    const baseline = new Map<string, string>([
      ['keep.patch', 'content of keep.patch'],
      ['x.patch', 'old content'],
      ['y.patch', 'content of y.patch'],
    ]);
    const units = buildUnits(files, { version: '1-1+deb12u1', baseline: { version: '1-1', patches: baseline } });
    const byId = new Map(units.map((u) => [u.id, u]));
    expect(units.map((u) => u.id)).toEqual(['keep.patch', 'CVE-2018-14628', 'CVE-2026-21637', 'CVE-2026-21710.patch', 'other/CVE-2026-21710-again.patch', 'x.patch', 'y.patch']);
    expect(byId.get('keep.patch')!.views).toEqual(['series']);
    expect(byId.get('y.patch')!.views).toEqual(['series']);
    expect(byId.get('x.patch')!.views).toEqual(['update', 'series']);
    expect(byId.get('x.patch')!.why).toMatch(/changed x\.patch relative to 1-1/);
    expect(byId.get('CVE-2018-14628')!).toMatchObject({ start: 1, patches: ['CVE-2018-14628/01-a.patch', 'CVE-2018-14628/02-b.patch', 'CVE-2018-14628/03-c.patch'], cves: ['CVE-2018-14628'], views: ['update', 'series'] });
    // Same content → same hash; a different patch set → a different hash.
    expect(byId.get('x.patch')!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(byId.get('x.patch')!.sha256).not.toBe(byId.get('y.patch')!.sha256);
  });

  it('does not count a refreshed patch (new index lines, shifted hunks, other context) as changed', () => {
    const patch = (index: string, at: number, context: string, added: string) =>
      `From: A <a@b.c>\nSubject: fix\n\ndiff --git a/src/x.c b/src/x.c\nindex ${index} 100644\n--- a/src/x.c\n+++ b/src/x.c\n@@ -${at},3 +${at},3 @@\n ${context}\n-  return n;\n+  ${added}\n`;
    const old = patch('1111..2222', 10, 'int f(int n) {', 'return n + 1;');
    const refreshed = patch('3333..4444', 14, 'int f(int n)  {', 'return n + 1;');
    const fixed = patch('3333..5555', 14, 'int f(int n)  {', 'return n + 2;');
    expect(changeOf(old)).toBe(changeOf(refreshed));
    expect(changeOf(old)).not.toBe(changeOf(fixed));
    const series = [{ path: 'x.patch', strip: 1, index: 0, comments: [] as string[] }];
    const judge = (content: string) => buildUnits([{ entry: series[0]!, content }], { version: '1-1+deb12u2', baseline: { version: '1-1+deb12u1', patches: new Map([['x.patch', old]]) } })[0]!.views;
    expect(judge(refreshed)).toEqual(['series']);
    expect(judge(fixed)).toEqual(['update', 'series']);
  });

  it('takes the series tail from the first CVE the changelog names as the update', () => {
    const files = entries.map((entry) => ({ entry, content: '' }));
    const units = markChangelogUpdates(buildUnits(files, { version: '18.20.4-1~deb12u2' }), ['CVE-2026-21710'], '18.20.4-1~deb12u2');
    expect(units.filter((u) => u.views.includes('update')).map((u) => u.id)).toEqual(['CVE-2026-21710.patch', 'other/CVE-2026-21710-again.patch', 'x.patch', 'y.patch']);
    expect(units.find((u) => u.id === 'x.patch')!.why).toMatch(/follows the update's first patch/);
  });
  it('leaves out of the update a patch the changelog shows Debian carried before it (exim4 keeps 90_localscan_dlopen last)', () => {
    const series = ['76-01-fix-CVE-2023-42117.patch', '78_03-Compiler-quietening.patch', '90_localscan_dlopen.dpatch'].map((path, index) => ({ path, strip: 1, index, comments: [] as string[] }));
    const units = buildUnits(series.map((entry) => ({ entry, content: '' })), { version: '4.96-15+deb12u10' });
    const texts = { update: '  * Fix CVE-2023-42117 (76-01-fix-CVE-2023-42117.patch)\n  * 78_03-Compiler-quietening.patch', older: [{ version: '4.96-14', body: '  * Unfuzz 90_localscan_dlopen.dpatch.' }] };
    const marked = markChangelogUpdates(units, ['CVE-2023-42117'], '4.96-15+deb12u10', texts);
    expect(marked.map((u) => u.views)).toEqual([['update', 'series'], ['update', 'series'], ['series']]);
    expect(marked[2]!.why).toMatch(/names it in 4\.96-14, before the update/);
    // Without the changelog's texts the tail rule is unchanged.
    expect(markChangelogUpdates(units, ['CVE-2023-42117'], '4.96-15+deb12u10').map((u) => u.views[0])).toEqual(['update', 'update', 'update']);
  });
});

describe('changelog', () => {
  const entry = (pkg: string, version: string, dist: string, body: string) => `${pkg} (${version}) ${dist}; urgency=medium\n\n${body}\n\n -- A <a@b.c>  Mon, 01 Jan 2026 00:00:00 +0000\n`;
  it('tells patch updates, new upstream releases and no update apart', () => {
    const patched = parseChangelog(entry('nodejs', '18.20.4+dfsg-1~deb12u2', 'bookworm-security', '  * Fix CVE-2025-23085') + entry('nodejs', '18.20.4+dfsg-1~deb12u1', 'bookworm-security', '  * New upstream, CVE-2024-22020') + entry('nodejs', '18.19.0+dfsg-6', 'unstable', ''));
    expect(patched.map((e) => e.version)).toEqual(['18.20.4+dfsg-1~deb12u2', '18.20.4+dfsg-1~deb12u1', '18.19.0+dfsg-6']);
    expect(changelogUpdates(patched)).toMatchObject({ kind: 'changelog', versions: ['18.20.4+dfsg-1~deb12u2'], cves: ['CVE-2025-23085'] });
    const upstream = parseChangelog(entry('apache2', '2.4.68-1~deb12u1', 'bookworm', '  * New upstream (CVE-2026-29167)') + entry('apache2', '2.4.67-1~deb12u3', 'bookworm-security', '  * Fix CVE-2026-49975'));
    expect(changelogUpdates(upstream)).toMatchObject({ kind: 'new-upstream', cves: ['CVE-2026-29167'] });
    const none = parseChangelog(entry('openldap', '2.5.13+dfsg-5', 'unstable', '') + entry('openldap', '2.5.13+dfsg-4', 'unstable', ''));
    expect(changelogUpdates(none).kind).toBe('none');
  });
});

describe('registry output parsing', () => {
  it('reads madison suites, showsrc checksums and apt 404s', () => {
    const madison = ' memcached |   1.6.18-1 | http://deb.debian.org/debian bookworm/main Sources\n memcached | 1.6.18-1+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main Sources\n memcached | 1.6.18-1 | http://deb.debian.org/debian bookworm/main amd64 Packages\n';
    expect([...parseMadison(madison, 'memcached').entries()]).toEqual([['1.6.18-1', ['bookworm']], ['1.6.18-1+deb12u1', ['bookworm-security']]]);
    const showsrc = `Package: memcached\nVersion: 1.6.18-1\nFormat: 3.0 (quilt)\nChecksums-Sha256:\n ${'a'.repeat(64)} 1999 memcached_1.6.18-1.dsc\n ${'b'.repeat(64)} 16756 memcached_1.6.18-1.debian.tar.xz\nHomepage: x\n\nPackage: other\nVersion: 1\n`;
    const parsed = parseShowsrc(showsrc, 'memcached');
    expect([...parsed.keys()]).toEqual(['1.6.18-1']);
    expect(parsed.get('1.6.18-1')!.files.map((f) => f.name)).toEqual(['memcached_1.6.18-1.dsc', 'memcached_1.6.18-1.debian.tar.xz']);
    const failures = parseFetchFailures('E: Failed to fetch http://deb.debian.org/debian/pool/main/s/samba/samba_4.17.12%2bdfsg-0%2bdeb12u2.dsc  404  Not Found [IP: 1.2.3.4 80]\nE: Failed to fetch some archives.\n');
    expect([...failures.entries()]).toEqual([['samba_4.17.12+dfsg-0+deb12u2.dsc', '404  Not Found']]);
  });
});

describe('manifests', () => {
  it('rejects malformed manifests with a clear error', () => {
    expect(() => checkManifest({ schema: 2 }, 'x.json')).toThrow(UserError);
    expect(() => checkManifest({ schema: 1, package: 'memcached', baseVersion: '1', units: [{ id: 'a', start: 0, patches: ['../x'], strip: [1], cves: [], sha256: 'a'.repeat(64), views: ['series'] }] }, 'x.json')).toThrow(/patches malformed/);
  });

  it('the committed manifests are well-formed and name the registry facts', async () => {
    for (const pkg of corpusPackages) {
      const m = await readManifest(pkg);
      expect(m.package).toBe(pkg);
      expect(m.units.length).toBeGreaterThan(0);
      expect(m.units.length).toBeLessThanOrEqual(m.seriesLength);
    }
    const memcached = await readManifest('memcached');
    expect(memcached.update.kind).toBe('patches');
    expect(memcached.units.filter((u) => u.views.includes('update')).flatMap((u) => u.cves)).toEqual(['CVE-2026-47783', 'CVE-2026-47784', 'CVE-2023-46852', 'CVE-2023-46853']);
    const samba = await readManifest('samba');
    expect(samba.units.find((u) => u.id === 'CVE-2018-14628')!.patches).toHaveLength(6);
  });
});

describe('unit patch files', () => {
  it('drop git format-patch signatures so concatenated patches stay one diff', async () => {
    const { withoutMailSignature } = await import('../pipeline/src/corpus/tree.ts');
    const mail = 'Subject: x\n---\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n-- \n2.47.3\n\n';
    expect(withoutMailSignature(mail)).toBe('Subject: x\n---\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n');
    // A removed line "-- " inside a hunk is not a signature.
    const hunk = '--- a/f\n+++ b/f\n@@ -1,2 +1 @@\n-- \n x\n';
    expect(withoutMailSignature(hunk)).toBe(hunk);
  });
});
