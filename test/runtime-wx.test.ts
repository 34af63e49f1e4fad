// The service as Debian runs it: libwfpatch patches a process that runs under the seccomp
// filters of a systemd unit with MemoryDenyWriteExecute=yes and SystemCallFilter=@system-service
// (kpatch-fork/runtime/tests/wfsandbox.c installs both with libseccomp before exec: mprotect
// adding PROT_EXEC and writable+executable mmap fail with EPERM, any system call outside
// systemd 252's @system-service, syscalls 1000-1003 among them, kills the process). One boot of
// the debug kernel (kernel/patches, 0005: PR_AS_GENERATION and PR_AS_GEN_WRITE) runs
// kernel/tests/gen_write.c and every scenario (kpatch-fork/runtime/tests/wx-suite.sh).
// WFPATCH_RUNTIME_BZIMAGE=PATH boots another kernel.
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { runInVm, type RunInVmResult } from '../pipeline/src/vm/index.ts';

const runtime = join(repoRoot, 'kpatch-fork/runtime');
const tests = join(runtime, 'tests');
const build = join(tests, 'build');
const bzImage = process.env.WFPATCH_RUNTIME_BZIMAGE;

// NAME:BOX:ENV:MODE:SCENARIO[:ARG...] (wx-suite.sh). "unit": under the unit's filters.
const scenarios = [
  'unit-stacked:unit:-:local:stacked:v2.o:v3.o',
  'unit-versions:unit:-:local:versions',
  'unit-shlib:unit:-:local:shlib:lib11.o',
  'unit-unwind:unit:-:local:unwind:unwind.o',
  'unit-bad:unit:-:local:bad:v2.o:wrongid.o:badreloc.o',
  // The runtime as it was: jumps through a temporary rwx mapping, code made r-x by mprotect.
  'legacy-mprotect:unit:WF_WX=0:local:stacked:v2.o:v3.o',
  // The runtime as it was: the generation syscalls instead of prctl.
  'legacy-syscalls:unit:WF_GEN_SYSCALLS=1:local:stacked:v2.o:v3.o',
  // Outside the sandbox the old way still works: the filters are what refuse it.
  'nobox-legacy:none:WF_WX=0:local:stacked:v2.o:v3.o',
  // Global mode writes generation 0's code: refused under the unit, with a clear reason.
  'unit-global:unit:-:global:stacked:v2.o:v3.o',
];

let out: string;
let vm: RunInVmResult;

interface Outcome {
  rc: number;
  lines: Record<string, any>[];
  result: Record<string, any>;
  log: Record<string, any>[];
  err: string;
}

async function outcome(name: string): Promise<Outcome> {
  const read = async (ext: string): Promise<string> => readFile(join(out, `${name}.${ext}`), 'utf8').catch(() => '');
  const parse = (text: string): Record<string, any>[] => text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const lines = parse(await read('out'));
  return { rc: Number((await read('rc')).trim()), lines, result: lines.at(-1) ?? {}, log: parse(await read('jsonl')), err: await read('err') };
}

const events = (log: Record<string, any>[], name: string): Record<string, any>[] => log.filter((e) => e.event === name);
const steps = (o: Outcome): [string, number][] => o.lines.filter((l) => 'step' in l).map((s) => [s.event, s.value]);

beforeAll(async () => {
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork'), '-j2'], { env: { MAKEFLAGS: '' } });
  await execa('make', ['-C', runtime, 'test-programs']);
  const bin = await mkdtemp(join(tmpdir(), 'wfruntime-wx-bin-'));
  out = await mkdtemp(join(tmpdir(), 'wfruntime-wx-'));
  // Static, so the guest needs no libseccomp; the filters are made as systemd makes them.
  await execa('gcc', ['-O2', '-Wall', '-Wextra', '-static', '-o', join(bin, 'wfsandbox'), join(tests, 'wfsandbox.c'), '-lseccomp']);
  await execa('gcc', ['-static', '-O2', '-pthread', '-Wall', '-Wno-unused-result', '-o', join(bin, 'gen_write'), join(repoRoot, 'kernel/tests/gen_write.c')]);
  const files = [
    ...['wftest', 'libwftarget.so', 'v2.o', 'v3.o', 'lib11.o', 'unwind.o', 'wrongid.o', 'badreloc.o'].map((f) => ({ host: join(build, f) })),
    { host: join(bin, 'wfsandbox') },
    { host: join(bin, 'gen_write') },
    { host: join(tests, 'system-service.syscalls') },
  ];
  vm = await runInVm({
    variant: 'debug',
    ...(bzImage ? { bzImage } : {}),
    program: join(tests, 'wx-suite.sh'),
    args: [join(bin, 'gen_write'), join(bin, 'wfsandbox'), join(tests, 'system-service.syscalls'), ...scenarios],
    files,
    env: { WF_GLOBAL_TIMEOUT: '3' },
    cpus: 2,
    memMiB: 1024,
    timeoutSec: 900,
    outDir: out,
  });
}, 1_800_000);

describe('W^X and syscall filters: the kernel write call and prctl', () => {
  it('the guest ran everything without a kernel failure', () => {
    expect(vm.timedOut).toBe(false);
    expect(vm.kernelFailure).toBeNull();
    expect(vm.exitCode).toBe(0);
  });

  it('PR_AS_GEN_WRITE changes one generation only; every errno; prctl is equivalent to the syscalls', async () => {
    const text = await readFile(join(out, 'gen_write.out'), 'utf8');
    expect(text).toContain('gen_write: PASS');
    expect(Number((await readFile(join(out, 'gen_write.rc'), 'utf8')).trim())).toBe(0);
  });
});

describe('libwfpatch under MemoryDenyWriteExecute=yes and SystemCallFilter=@system-service', () => {
  it('stacked patches apply and roll back; no code mapping was made writable or executable', async () => {
    const o = await outcome('unit-stacked');
    expect(o.err).toMatch(/wfsandbox: \d+ system calls allowed/);
    expect(steps(o)).toEqual([['done', 2], ['done', 3], ['done', 2], ['done', 1], ['rejected', 1], ['done', 3]]);
    expect(o.result.ok, JSON.stringify(o.result)).toBe(true);
    expect(events(o.log, 'init')[0]).toMatchObject({ mode: 'local', generations: true, wx: true });
    expect(events(o.log, 'jumps_written')).toHaveLength(3);
    // The code runs from its own r-x mapping, not from the (never executable) load region.
    for (const l of events(o.log, 'patch_loaded')) {
      expect(l.wx).toBe(true);
      expect(BigInt(l.text_at) < BigInt(l.at) || BigInt(l.text_at) >= BigInt(l.at) + BigInt(l.region_bytes)).toBe(true);
    }
    expect(o.rc).toBe(0);
  });

  it('8 workers migrate on their own to the patched generation', async () => {
    const o = await outcome('unit-versions');
    expect(o.result.ok, JSON.stringify(o.result)).toBe(true);
    expect(o.result.local).toBe(true);
    expect(events(o.log, 'migrated')).toHaveLength(8);
    expect(events(o.log, 'summary')[0]).toMatchObject({ outcome: 'applied', mode: 'local', migrated: 8 });
  });

  it('patches a shared library (code mapped r-x near the library)', async () => {
    const o = await outcome('unit-shlib');
    expect(o.result.ok, JSON.stringify(o.result)).toBe(true);
    expect(o.result.workers.every((w: any) => w.last === 11 && w.violations === 0)).toBe(true);
  });
});

describe('under the unit too', () => {
  it('the unwinder finds every frame through patch code in its r-x mapping (.eh_frame registered)', async () => {
    const o = await outcome('unit-unwind');
    expect(o.result).toMatchObject({ ok: true, outcome: 'done' });
    expect(o.result.after).toBe(o.result.before + 1000);
    expect(events(o.log, 'jumps_written')[0].eh_frames_registered).toBe(1);
  });

  it('bad patches are rejected with their reason, the process serves on and a good one applies', async () => {
    const o = await outcome('unit-bad');
    expect(steps(o).map(([e]) => e)).toEqual(['rejected', 'rejected', 'done']);
    const s = o.lines.filter((l) => 'step' in l);
    expect(s[0].reason).toMatch(/wrong build-id/);
    expect(s[1].reason).toMatch(/unsupported relocation type 25/);
  });
});

describe('without the change the unit refuses live patching', () => {
  it('rwx jump writes and mprotect(PROT_EXEC) fail with EPERM: the patch is rejected, the process serves on', async () => {
    const o = await outcome('legacy-mprotect');
    expect(events(o.log, 'init')[0]).toMatchObject({ generations: true, wx: false });
    const s = o.lines.filter((l) => 'step' in l);
    expect(s[0]).toMatchObject({ event: 'rejected', value: 1 });
    expect(s[0].reason).toMatch(/mprotect.*Operation not permitted/);
    expect(o.result.ok).toBe(false);
  });

  it('syscalls 1000-1003 kill the process (SIGSYS) at wf_init', async () => {
    const o = await outcome('legacy-syscalls');
    expect(o.rc).toBe(128 + 31);
    expect(o.lines).toHaveLength(0);
  });

  it('outside the filters the old way applies, so the filters are what refuse it', async () => {
    const o = await outcome('nobox-legacy');
    expect(steps(o)).toEqual([['done', 2], ['done', 3], ['done', 2], ['done', 1], ['rejected', 1], ['done', 3]]);
    expect(events(o.log, 'init')[0]).toMatchObject({ wx: false });
  });

  it('global mode (it writes generation 0) is refused under the unit with the reason, and the process serves on', async () => {
    const o = await outcome('unit-global');
    const s = o.lines.filter((l) => 'step' in l);
    expect(s[0]).toMatchObject({ event: 'rejected', value: 1 });
    expect(s[0].reason).toMatch(/mprotect.*Operation not permitted/);
  });
});
