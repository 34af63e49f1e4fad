import { describe, expect, it } from 'vitest';
import { packageRow, ratios, reasonHistogram, reasonKind, totalRow, type UnitResult, type Verdict } from '../pipeline/src/corpus/results.ts';
import { formatSeconds, paperTable, renderReport } from '../pipeline/src/corpus/table.ts';

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
