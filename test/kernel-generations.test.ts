// Address-space generations (kernel/patches) in a real guest: the debug kernel variant
// (DEBUG_VM, PROVE_LOCKING, DEBUG_ATOMIC_SLEEP) boots under QEMU once and runs every
// kernel/tests/gen_*.c program; each semantics of issue #3 is one program, and any kernel
// splat on the console fails the suite. WFGEN_BZIMAGE boots a given kernel instead of the
// harness's cached debug build; WFGEN_STRESS="iterations threads" scales the stress test.
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { runInVm, type RunInVmResult } from '../pipeline/src/vm/index.ts';
import { featureKernelArgs, suitePrograms } from './kernel-programs.ts';

const testsDir = join(repoRoot, 'kernel/tests');
const guestDir = '/wfgen';
const stress = process.env.WFGEN_STRESS ?? '10000 64';

const programs = suitePrograms(stress);

let out: string;
let vm: RunInVmResult;

async function compile(name: string, dir: string): Promise<string> {
  const bin = join(dir, name);
  await execa('gcc', ['-static', '-O2', '-pthread', '-Wall', '-Wno-unused-result', '-o', bin, join(testsDir, `${name}.c`)]);
  return bin;
}

async function result(name: string): Promise<{ rc: number; text: string }> {
  const text = await readFile(join(out, `${name}.out`), 'utf8').catch(() => '');
  const rc = Number((await readFile(join(out, `${name}.rc`), 'utf8').catch(() => 'NaN')).trim());
  return { rc, text };
}

beforeAll(async () => {
  const bins = await mkdtemp(join(tmpdir(), 'wfgen-bin-'));
  out = await mkdtemp(join(tmpdir(), 'wfgen-out-'));
  const files = await Promise.all(programs.map(async ([name]) => ({ host: await compile(name, bins), guest: `${guestDir}/${name}` })));
  vm = await runInVm({
    variant: 'debug',
    bzImage: process.env.WFGEN_BZIMAGE,
    program: join(testsDir, 'run-suite.sh'),
    args: [guestDir, ...programs.map(([name, args]) => (args ? `${name} ${args}` : name))],
    files,
    cpus: 2,
    memMiB: 1024,
    timeoutSec: 2400,
    outDir: out,
    kernelArgs: [...featureKernelArgs],
  });
}, 3_600_000);

describe('address-space generations in the debug kernel', () => {
  it('boots, runs every program, no kernel splat, no hang', () => {
    expect(vm.timedOut, vm.console.slice(-3000)).toBe(false);
    expect(vm.kernelFailure).toBeNull();
    expect(vm.exitCode, vm.console.slice(-3000)).not.toBeNull();
  });

  it('9: every errno, and a random-argument run never oopses', async () => {
    const r = await result('gen_errno');
    expect(r.text).toContain('gen_errno: PASS');
    expect(r.text).toMatch(/random run: [1-9]\d* children/);
    expect(r.rc).toBe(0);
  });

  it('1: pinned data and code diverge between generations', async () => {
    const r = await result('gen_pinned');
    expect(r.text).toContain('gen_pinned: PASS');
    expect(r.rc).toBe(0);
  });

  it('2: everything unpinned is one memory', async () => {
    const r = await result('gen_shared');
    expect(r.text).toContain('live handshake: 10000 rounds');
    expect(r.text).toContain('gen_shared: PASS');
    expect(r.rc).toBe(0);
  });

  it('3: mapping changes take effect in all generations', async () => {
    const r = await result('gen_mappings');
    expect(r.text).toContain('gen_mappings: PASS');
    expect(r.rc).toBe(0);
  });

  it('4: threads start in their creator\'s generation; no leak over two rounds of 1,000 cycles', async () => {
    const r = await result('gen_threads');
    // Free memory counts the per-CPU free lists (MemFree alone swings by megabytes).
    expect(r.text).toMatch(/round 1, 1000 cycles: free \d+ -> \d+ KiB/);
    expect(r.text).toMatch(/round 2, 1000 cycles: free \d+ -> \d+ KiB/);
    expect(r.text).toContain('gen_threads: PASS');
    expect(r.rc).toBe(0);
  });

  it('6: private futexes across generations (20,000-round condvar ping-pong)', async () => {
    const r = await result('gen_futex');
    expect(r.text).toContain('ping-pong: 20000 rounds');
    expect(r.text).toContain('gen_futex: PASS');
    expect(r.rc).toBe(0);
  });

  it('5: fork gives the generation\'s view, execve tears generations down', async () => {
    const r = await result('gen_forkexec');
    expect(r.text).toContain('gen_forkexec: PASS');
    expect(r.rc).toBe(0);
  });

  it('7: maps, ptrace, process_vm_readv, /proc/PID/mem, core dump', async () => {
    const r = await result('gen_introspect');
    expect(r.text).toContain('gen_introspect: PASS');
    expect(r.rc).toBe(0);
  });

  it('8: stress — migrating threads and concurrent mapping changes lose no write', async () => {
    const r = await result('gen_stress');
    expect(r.text).toContain('gen_stress: PASS');
    expect(r.rc).toBe(0);
  });

  it('THP (madvise and always) under generations: huge pages used, nine semantics hold', async () => {
    const r = await result('gen_thp');
    expect(r.text).toMatch(/gen_thp \(madvise\): [1-9]\d* KiB AnonHugePages/);
    expect(r.text).toMatch(/gen_thp \(always\): [1-9]\d* KiB AnonHugePages/);
    expect(r.text).toContain('gen_thp: PASS');
    expect(r.rc).toBe(0);
  });

  it('KSM merges pages of a process with generations, nine semantics hold', async () => {
    const r = await result('gen_ksm');
    expect(r.text).toMatch(/gen_ksm: [1-9]\d* pages sharing/);
    expect(r.text).toContain('gen_ksm: PASS');
    expect(r.rc).toBe(0);
  });

  it('NUMA balancing (numa=fake=2) and page migration under generations', async () => {
    const r = await result('gen_numa');
    expect(r.text).toMatch(/gen_numa: [1-9]\d* pages moved between nodes, [1-9]\d* PTEs made prot_none, [1-9]\d* hinting faults/);
    expect(r.text).toContain('gen_numa: PASS');
    expect(r.rc).toBe(0);
  });

  it('swap-out (zram, memcg pressure, MADV_PAGEOUT) of private and shared pages', async () => {
    const r = await result('gen_swap');
    expect(r.text).toMatch(/gen_swap \(private\): [1-9]\d* KiB of the area swapped out/);
    expect(r.text).toMatch(/gen_swap \(shared\): [1-9]\d* KiB of the area swapped out/);
    expect(r.text).toContain('gen_swap: PASS');
    expect(r.rc).toBe(0);
  });

  it('userfaultfd on an unpinned range: one fault per page whichever generation touches it', async () => {
    const r = await result('gen_uffd');
    expect(r.text).toMatch(/gen_uffd: (\d+) missing faults for \1 pages/);
    expect(r.text).toContain('gen_uffd: PASS');
    expect(r.rc).toBe(0);
  });

  it('a memory cgroup limit stops pinned copies (ENOMEM or the cgroup OOM killer)', async () => {
    const r = await result('gen_memcg');
    expect(r.text).toMatch(/gen_memcg copies at wf_create: limit 48M, status \S+ \((killed|ENOMEM)\)/);
    expect(r.text).toMatch(/gen_memcg copies on write: limit 48M, status \S+ \((killed|ENOMEM)\)/);
    expect(r.text).toContain('gen_memcg: PASS');
    expect(r.rc).toBe(0);
  });
});
