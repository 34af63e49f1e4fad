import { describe, expect, it, beforeAll } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { triagePatch, type Triage } from '../pipeline/src/triage/index.ts';
import { parseHeader, findCves } from '../pipeline/src/triage/dep3.ts';
import { classifyPath } from '../pipeline/src/triage/files.ts';
import { UserError } from '../pipeline/src/cli/errors.ts';
import { fetchPackage } from '../pipeline/src/stages/source.ts';
import { cacheRoot } from '../pipeline/src/paths.ts';

const fixtures = new URL('./fixtures/smallc/', import.meta.url).pathname;

describe('DEP-3 header', () => {
  it('reads Description (short and long), Origin, Bug, Bug-Debian, Forwarded', () => {
    const h = parseHeader(
      'Description: fix a use-after-free in the parser\n When a request is cut short the buffer was freed twice.\n .\n Second paragraph.\nOrigin: upstream, https://example.org/commit/abc\nBug: https://example.org/issues/12\nBug-Debian: https://bugs.debian.org/1000001\nForwarded: yes\nAuthor: Jane Doe <jane@example.org>\nLast-Update: 2024-01-01\n',
    );
    expect(h.description).toBe('fix a use-after-free in the parser');
    expect(h.longDescription).toBe('When a request is cut short the buffer was freed twice.\n\nSecond paragraph.');
    expect(h.origin).toBe('upstream, https://example.org/commit/abc');
    expect(h.bugs).toEqual(['https://example.org/issues/12', 'https://bugs.debian.org/1000001']);
    expect(h.bugDebian).toBe('https://bugs.debian.org/1000001');
    expect(h.forwarded).toBe('yes');
    expect(h.author).toBe('Jane Doe <jane@example.org>');
    expect(h.fields['last-update']).toBe('2024-01-01');
  });

  it('takes a git format-patch Subject (wrapped, with [PATCH]) as the description and keeps the body', () => {
    const h = parseHeader(
      'From 6987918e9a3094ec4fc8976f01f769f624d790fa Mon Sep 17 00:00:00 2001\nFrom: A Dev <dev@example.org>\nDate: Wed, 2 Aug 2023 15:45:56 -0700\nSubject: [PATCH 2/3] proxy: fix off-by-one\n if \\r is missing\n\nThe parser assumed \\r\\n.\nNote: free text with a colon.\n---\n proxy.h | 1 +\n',
    );
    expect(h.description).toBe('proxy: fix off-by-one if \\r is missing');
    expect(h.author).toBe('A Dev <dev@example.org>');
    expect(h.longDescription).toContain('The parser assumed');
    expect(h.longDescription).toContain('Note: free text with a colon.');
    expect(h.longDescription).not.toContain('proxy.h | 1');
    expect(h.fields['note']).toBeUndefined();
  });

  it('finds CVE ids in any case, de-duplicated, in order', () => {
    expect(findCves('fixes cve-2023-46852 and CVE-2023-46853', '0009-CVE-2023-46852.patch')).toEqual(['CVE-2023-46852', 'CVE-2023-46853']);
    expect(findCves('CVE-2026-47783-CVE-2026-47784.patch')).toEqual(['CVE-2026-47783', 'CVE-2026-47784']);
    expect(findCves('no ids here, CVE-12-1 is malformed')).toEqual([]);
  });
});

describe('file classification', () => {
  it.each([
    ['sasl_defs.c', 'c-source'],
    ['src/foo.cc', 'cxx-source'],
    ['proxy.h', 'header'],
    ['arch/x86/entry.S', 'asm'],
    ['configure.ac', 'build-system'],
    ['Makefile.am', 'build-system'],
    ['m4/ax_foo.m4', 'build-system'],
    ['CMakeLists.txt', 'build-system'],
    ['t/proxy.t', 'tests'],
    ['tests/unit/test_parser.c', 'tests'],
    ['doc/protocol.txt', 'docs'],
    ['README.md', 'docs'],
    ['memcached.1', 'docs'],
    ['ChangeLog', 'docs'],
    ['debian/rules', 'debian-packaging'],
    ['scripts/memcached-tool', 'other'],
    // configure templates are what they become: a script stays a script, a header is built
    ['support/apxs.in', 'other'],
    ['support/envvars-std.in', 'other'],
    ['include/ap_config_layout.h.in', 'build-system'],
    ['servers/slapd/Makefile.in', 'build-system'],
    ['libfoo.pc.in', 'build-system'],
    ['doc/manual.txt.in', 'docs'],
  ])('%s is %s', (path, kind) => {
    expect(classifyPath(path)).toBe(kind);
  });
});

describe('triagePatch', () => {
  it('parses the text-only fixture: one C file, header fields, CVE from the header and the name', async () => {
    const path = join(fixtures, 'patches/0001-text-only-CVE-2099-0001.patch');
    const t = triagePatch(await readFile(path, 'utf8'), path);
    expect(t.name).toBe('0001-text-only-CVE-2099-0001.patch');
    expect(t.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(t.header.description).toBe('reject empty names in greet()');
    expect(t.header.bugDebian).toBe('https://bugs.debian.org/999999');
    expect(t.cves).toEqual(['CVE-2099-0001']);
    expect(t.files).toEqual([{ path: 'greet.c', kind: 'c-source', change: 'modified', hunks: 1, added: 1, removed: 1, mayChangeCode: true }]);
    expect(t.touchesCompiledCode).toBe(true);
  });

  it('knows a docs-only patch touches no compiled code', async () => {
    const path = join(fixtures, 'patches/0003-docs-only.patch');
    const t = triagePatch(await readFile(path, 'utf8'), path);
    expect(t.files.map((f) => [f.path, f.kind])).toEqual([['README.md', 'docs']]);
    expect(t.touchesCompiledCode).toBe(false);
  });

  it('handles git diffs with new and deleted files and a format-patch signature', () => {
    const text = [
      'From: Dev <d@example.org>',
      'Subject: [PATCH] add a helper, drop an old test',
      '',
      '---',
      ' 2 files changed',
      '',
      'diff --git a/helper.c b/helper.c',
      'new file mode 100644',
      'index 0000000..1111111',
      '--- /dev/null',
      '+++ b/helper.c',
      '@@ -0,0 +1,2 @@',
      '+int helper(void);',
      '+int helper(void) { return 1; }',
      'diff --git a/tests/old.t b/tests/old.t',
      'deleted file mode 100644',
      'index 2222222..0000000',
      '--- a/tests/old.t',
      '+++ /dev/null',
      '@@ -1 +0,0 @@',
      '-ok 1',
      '-- ',
      '2.39.2',
      '',
    ].join('\n');
    const t = triagePatch(text, 'x.patch');
    expect(t.files.map((f) => [f.path, f.kind, f.change])).toEqual([
      ['helper.c', 'c-source', 'added'],
      ['tests/old.t', 'tests', 'deleted'],
    ]);
    expect(t.header.description).toBe('add a helper, drop an old test');
  });

  it('reads a file of several mailed commits (a forge compare .patch): every commit, files merged, CVEs from any message', () => {
    const commit = (sha: string, subject: string, body: string[]) => [
      `From ${sha} Mon Sep 17 00:00:00 2001`,
      'From: Dev <d@example.org>',
      `Subject: ${subject}`,
      '',
      '---',
      ' 1 file changed',
      '',
      ...body,
    ];
    const text = [
      'Description: upstream fix, three commits',
      'Origin: https://example.org/compare/a...b.patch',
      '',
      'diff --git a/src/lib/list.h b/src/lib/list.h',
      '--- a/src/lib/list.h',
      '+++ b/src/lib/list.h',
      '@@ -1,2 +1,3 @@',
      ' #define A 1',
      '+#define B 2',
      ' #define C 3',
      '',
      ...commit('cee08202c759a3bdf185d998dcf888ebd1bc6e36', '[PATCH 2/3] parser: fix CVE-2099-0001', [
        'diff --git a/src/parser.c b/src/parser.c',
        '--- a/src/parser.c',
        '+++ b/src/parser.c',
        '@@ -10,3 +10,3 @@',
        ' int x;',
        '-int y;',
        '+long y;',
        ' int z;',
        '-- ',
        '2.43.0',
        '',
      ]),
      ...commit('ce88c33abc37e408592eff70aeefa28f803effb9', '[PATCH 3/3] list: one more', [
        'diff --git a/src/lib/list.h b/src/lib/list.h',
        '--- a/src/lib/list.h',
        '+++ b/src/lib/list.h',
        '@@ -2,2 +2,3 @@',
        ' #define B 2',
        '+#define D 4',
        ' #define C 3',
        '',
      ]),
    ].join('\n');
    const t = triagePatch(text, 'CVE-2099-0001.patch');
    expect(t.files.map((f) => [f.path, f.change, f.hunks, f.added, f.removed])).toEqual([
      ['src/lib/list.h', 'modified', 2, 2, 0],
      ['src/parser.c', 'modified', 1, 1, 1],
    ]);
    expect(t.cves).toEqual(['CVE-2099-0001']);
    expect(t.header.description).toBe('upstream fix, three commits');
    // A broken hunk in a later commit is still an error, and says which commit.
    const broken = text.replace(' #define B 2\n+#define D 4', '+#define D 4');
    expect(() => triagePatch(broken, 'x.patch')).toThrow(/malformed patch: .*in the commit from line 3\d/);
  });

  it('rejects a binary diff, naming the file', async () => {
    const path = join(fixtures, 'bad/binary-file.patch');
    const text = await readFile(path, 'utf8');
    expect(() => triagePatch(text, path)).toThrow(UserError);
    expect(() => triagePatch(text, path)).toThrow(/binary diff for logo\.png/);
    expect(() => triagePatch('--- a/x.png\n+++ b/x.png\nBinary files a/x.png and b/x.png differ\n', 'y.patch')).toThrow(/binary diff for x\.png/);
  });

  it('rejects text without a diff and malformed hunks', async () => {
    const path = join(fixtures, 'bad/not-a-patch.patch');
    expect(() => triagePatch('just prose\n', path)).toThrow(/not a patch/);
    expect(() => triagePatch('--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n a\n-b\n', 'short.patch')).toThrow(/malformed patch/);
  });
});

/**
 * Real Debian patches, fetched from the registry at test time (apt-get source, cached under
 * cacheRoot/wfbuild/sources) — third-party patches are never committed.
 */
describe('real memcached 1.6.18-1+deb12u1 patches', () => {
  let patches: string;
  const triaged: Record<string, Triage> = {};
  beforeAll(async () => {
    const tree = await fetchPackage('memcached=1.6.18-1+deb12u1', join(cacheRoot, 'wfbuild/sources'));
    patches = join(tree.dir, 'debian/patches');
    for (const name of await readdir(patches)) {
      if (name === 'series') continue;
      triaged[name] = triagePatch(await readFile(join(patches, name), 'utf8'), join(patches, name));
    }
  }, 300_000);

  it('0008: SASL timing fix — CVE ids from the file name, Subject and Origin from the header', () => {
    const t = triaged['0008-CVE-2026-47783-CVE-2026-47784.patch'];
    expect(t.cves).toEqual(['CVE-2026-47783', 'CVE-2026-47784']);
    expect(t.header.description).toBe('Fix timing side-channel in SASL password database authentication');
    expect(t.header.origin).toMatch(/^upstream, https:\/\/github\.com\/memcached\/memcached\/commit\/d13f282b/);
    expect(t.files.map((f) => [f.path, f.kind])).toEqual([['sasl_defs.c', 'c-source']]);
  });

  it('0009: a header-less proxy fix, CVE from the name', () => {
    const t = triaged['0009-CVE-2023-46852.patch'];
    expect(t.cves).toEqual(['CVE-2023-46852']);
    expect(t.header.description).toBeNull();
    expect(t.files.map((f) => [f.path, f.kind])).toEqual([['proto_proxy.c', 'c-source']]);
  });

  it('CVE-2023-46853: changes a struct in proxy.h and proxy_request.c', () => {
    const t = triaged['CVE-2023-46853.patch'];
    expect(t.cves).toEqual(['CVE-2023-46853']);
    expect(t.header.description).toBe('proxy: fix off-by-one if \\r is missing');
    expect(t.files.map((f) => [f.path, f.kind])).toEqual([
      ['proxy.h', 'header'],
      ['proxy_request.c', 'c-source'],
    ]);
  });

  it('every patch of the series parses; packaging-only patches touch no compiled code', () => {
    expect(Object.keys(triaged).length).toBeGreaterThanOrEqual(9);
    const systemd = triaged['0006-restore-systemd-sandboxing.patch'];
    expect(systemd.touchesCompiledCode).toBe(false);
  });
});

describe('package specs', () => {
  it('splits NAME[=VERSION] and rejects what apt-get would misread', async () => {
    const { parsePackageSpec } = await import('../pipeline/src/stages/source.ts');
    expect(parsePackageSpec('memcached=1.6.18-1+deb12u1')).toEqual({ name: 'memcached', version: '1.6.18-1+deb12u1' });
    expect(parsePackageSpec('libc6')).toEqual({ name: 'libc6', version: null });
    expect(() => parsePackageSpec('-o=Dir::Cache=/x')).toThrow(UserError);
    expect(() => parsePackageSpec('memcached=latest')).toThrow(/not a Debian version/);
  });

  it('without a version, takes the newest the registry has (and caches it by version)', async () => {
    const tree = await fetchPackage('memcached', join(cacheRoot, 'wfbuild/sources'));
    expect(tree.package?.name).toBe('memcached');
    expect(tree.package?.version).toMatch(/^1\.6\.18-1\+deb12u\d+$/);
    expect(tree.dir).toBe(join(cacheRoot, 'wfbuild/sources', `memcached_${tree.package!.version}`, 'tree'));
  }, 300_000);
});
