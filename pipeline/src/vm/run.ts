import { access, constants, copyFile, mkdtemp, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { UserError, ExitCode } from '../cli/errors.ts';
import { buildKernel } from '../kernel/build.ts';
import { kernelVariants, type KernelVariant } from '../kernel/config.ts';
import { requirePrerequisites, whichCommand } from '../kernel/prerequisites.ts';
import { buildInitramfs, busyboxPath, guestPathFor, type GuestFile } from './initramfs.ts';
import { initScript } from './init-script.ts';
import { consoleTail, detectKernelFailure, parseControl } from './console.ts';
import { guestClockArgs, hostTscKhz } from './clock.ts';
import { userlandCommand, userlandQemuArgs, userlandSetup, type Userland } from './userland.ts';
import { debianRootfs } from './rootfs.ts';

export interface RunInVmOptions {
  /** Kernel variant (built or reused through buildKernel); default 'debug'. */
  variant?: KernelVariant;
  /** Boot this bzImage instead of the variant's cached build. */
  bzImage?: string;
  cpus?: number;
  memMiB?: number;
  timeoutSec?: number;
  /** Extra files; each goes to `guest` or, by default, the same path as on the host. */
  files?: GuestFile[];
  /** Environment of the program (on top of PATH, HOME, TERM, WFVM_RESULTS=/results). */
  env?: Record<string, string>;
  /** Host folder that receives the guest's /results folder. */
  outDir?: string;
  /** Host path of the program (or a name found in PATH); it runs at the same path in the guest. */
  program: string;
  args?: string[];
  /** Console output as it arrives. */
  onConsole?: (text: string) => void;
  /** Extra kernel command-line parameters (e.g. numa=fake=2), one word each. */
  kernelArgs?: string[];
  /**
   * Run the program in a Debian userland (userland.ts): `true` or 'host' is the host's / over
   * virtio-9p under a tmpfs overlay; a rootfs spec is a small Debian machine (a per-run copy of
   * a debootstrap'd root, or of `root`), with `shares` (host folders, read-only, at their paths).
   * In a rootfs guest the program and `files` are copied into the root at their guest paths
   * (their libraries come from the root), unless the program lies in a share.
   */
  userland?: boolean | 'host' | RootfsUserland;
}

export interface RootfsUserland {
  readonly kind: 'rootfs';
  /** Packages beside minbase (debootstrap --include), when `root` is not given. */
  readonly packages?: readonly string[];
  /** A prepared root folder to copy instead of a debootstrap'd one. */
  readonly root?: string;
  readonly shares?: readonly string[];
}

/**
 * The run's root for a rootfs guest: a copy of the cached root (the guest writes it over 9p;
 * reflinks where the file system has them), the program and files placed at their guest paths.
 */
async function prepareRootfs(spec: RootfsUserland, work: string, program: string, files: readonly GuestFile[], onOutput?: (line: string) => void): Promise<Userland> {
  const cached = spec.root ?? (await debianRootfs({ packages: spec.packages, onOutput }));
  const root = join(work, 'root');
  await execa('cp', ['-a', '--reflink=auto', cached, root]);
  const shares = [...new Set((spec.shares ?? []).map((s) => resolve(s)))].sort();
  const inShare = (p: string): boolean => shares.some((s) => p === s || p.startsWith(`${s}/`));
  for (const f of files) {
    const guest = guestPathFor(f);
    if (f.host === program && f.guest === undefined && inShare(program)) continue;
    await mkdir(join(root, dirname(guest)), { recursive: true });
    await copyFile(f.host, join(root, guest));
  }
  return { kind: 'rootfs', root, shares };
}

export interface RunInVmResult {
  /** The program's exit status (128+N for signal N); null if it never finished. */
  exitCode: number | null;
  /** The first kernel BUG/WARNING/Oops/panic/lockdep/KASAN report with context, or null. */
  kernelFailure: string | null;
  timedOut: boolean;
  console: string;
  /** Files copied from the guest's /results (relative paths), when outDir was given. */
  results: string[];
}

export const qemuBinary = 'qemu-system-x86_64';
/**
 * qboot instead of SeaBIOS: SeaBIOS's MP table lists only the boot CPU, and the guest
 * kernel has no ACPI (a large build) to find the others; qboot lists every CPU and
 * starts faster.
 */
export const qbootRom = '/usr/share/qemu/qboot.rom';
const envKey = /^[A-Za-z_][A-Za-z0-9_]*$/;
const kernelArg = /^[A-Za-z0-9_.,=:-]+$/;

function checkOptions(opts: RunInVmOptions): void {
  const positiveInt = (name: string, value: number | undefined, max: number): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > max)) {
      throw new UserError(`${name} must be an integer from 1 to ${max}, got ${value}`);
    }
  };
  positiveInt('cpus', opts.cpus, 8);
  positiveInt('memMiB', opts.memMiB, 16384);
  positiveInt('timeoutSec', opts.timeoutSec, 86400);
  if (opts.memMiB !== undefined && opts.memMiB < 64) throw new UserError(`memMiB must be at least 64, got ${opts.memMiB}`);
  if (opts.variant !== undefined && !kernelVariants.includes(opts.variant)) {
    throw new UserError(`unknown kernel variant '${String(opts.variant)}' (expected ${kernelVariants.join(' or ')})`);
  }
  for (const arg of opts.kernelArgs ?? []) {
    if (!kernelArg.test(arg)) throw new UserError(`bad kernel parameter '${arg}' (one word: letters, digits, and . , = : _ -)`);
  }
  for (const key of Object.keys(opts.env ?? {})) {
    if (!envKey.test(key)) throw new UserError(`bad environment variable name '${key}'`);
  }
  if (typeof opts.program !== 'string' || opts.program === '') throw new UserError('no program given');
}

/** Resolves the program like a shell would: a path as given, a bare name through PATH. */
async function resolveProgram(program: string): Promise<string> {
  const found = program.includes('/') ? resolve(program) : await whichCommand(program);
  if (found === undefined) throw new UserError(`unknown program '${program}': not a file and not in PATH`);
  const info = await stat(found).catch(() => undefined);
  if (!info?.isFile()) throw new UserError(`unknown program '${program}': ${found} is not a file`);
  if ((info.mode & 0o111) === 0) throw new UserError(`program ${found} is not executable`);
  return found;
}

/** Extracts the results tar into outDir through a temporary folder, so outDir never holds half a file. */
async function unpackResults(tar: Buffer, outDir: string): Promise<string[]> {
  const target = resolve(outDir);
  await mkdir(target, { recursive: true });
  const tmp = await mkdtemp(join(target, '.wfvm-results-'));
  try {
    await execa('tar', ['-x', '--no-same-owner', '-C', tmp], { input: tar });
    const names: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const entry of await readdir(join(tmp, dir), { withFileTypes: true })) {
        const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          await mkdir(join(target, rel), { recursive: true });
          await walk(join(dir, entry.name), rel);
        } else {
          await rm(join(target, rel), { recursive: true, force: true });
          await rename(join(tmp, rel), join(target, rel));
          names.push(rel);
        }
      }
    };
    await walk('.', '');
    return names.sort();
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Checks options, prerequisites, the program and every file, so bad input fails before a
 * possibly long kernel build. Returns the resolved program and the files to place.
 */
export async function checkRunOptions(opts: RunInVmOptions): Promise<{ program: string; files: GuestFile[] }> {
  checkOptions(opts);
  await requirePrerequisites([
    { what: 'QEMU (x86-64 system emulator)', path: qemuBinary, debianPackage: 'qemu-system-x86' },
    { what: 'qboot firmware', path: qbootRom, debianPackage: 'qemu-system-data' },
    { what: 'busybox (static)', path: busyboxPath, debianPackage: 'busybox-static' },
    { what: 'ldd', path: 'ldd', debianPackage: 'libc-bin' },
  ]);
  const program = await resolveProgram(opts.program);
  const files: GuestFile[] = [{ host: program }, ...(opts.files ?? []).map((f) => ({ ...f, host: resolve(f.host) }))];
  for (const f of files) {
    guestPathFor(f);
    const info = await stat(f.host).catch((error: NodeJS.ErrnoException) => {
      throw new UserError(`cannot read ${f.host}: ${error.code ?? error.message}`);
    });
    if (!info.isFile()) throw new UserError(`${f.host} is not a regular file`);
    await access(f.host, constants.R_OK).catch(() => {
      throw new UserError(`cannot read ${f.host}: permission denied`);
    });
  }
  if (typeof opts.userland === 'object') {
    for (const dir of [...(opts.userland.shares ?? []), ...(opts.userland.root !== undefined ? [opts.userland.root] : [])]) {
      const info = await stat(dir).catch(() => undefined);
      if (!info?.isDirectory()) throw new UserError(`--share/root ${dir} is not a folder`);
      if (resolve(dir) === '/') throw new UserError('sharing the host\'s / is --userland=host');
    }
  }
  return { program, files };
}

/**
 * Boots the guest kernel under QEMU (TCG) with an initramfs holding busybox, the program,
 * the files and their shared libraries; runs the program with the given environment and
 * reports its exit status, any kernel failure on the console, and the guest's /results.
 */
export async function runInVm(opts: RunInVmOptions): Promise<RunInVmResult> {
  const { program, files } = await checkRunOptions(opts);
  const bzImage = opts.bzImage ?? (await buildKernel({ variant: opts.variant ?? 'debug' })).bzImage;
  if (opts.bzImage !== undefined) await stat(bzImage).catch(() => {
    throw new UserError(`cannot read kernel image ${bzImage}`);
  });

  const work = await mkdtemp(join(tmpdir(), 'wfvm-'));
  try {
    const initrd = join(work, 'initramfs.cpio');
    const land: Userland | undefined = opts.userland === true || opts.userland === 'host' ? { kind: 'host' }
      : typeof opts.userland === 'object' ? await prepareRootfs(opts.userland, work, program, files, (l) => opts.onConsole?.(`${l}\n`))
      : undefined;
    const userland = land ? { setup: userlandSetup(land, Math.max(128, Math.floor((opts.memMiB ?? 1024) / 2))), command: userlandCommand(program, opts.args ?? []) } : undefined;
    // A rootfs guest has the program and files in its root: the initramfs needs only busybox.
    await buildInitramfs(initrd, initScript({ program, args: opts.args ?? [], env: opts.env ?? {}, userland }), land?.kind === 'rootfs' ? [] : files);
    const control = join(work, 'control.log');
    const cpus = opts.cpus ?? 2;
    const qemuArgs = [
      '-accel', 'tcg', '-cpu', 'max',
      '-smp', String(cpus),
      '-m', String(opts.memMiB ?? 1024),
      '-bios', qbootRom,
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-kernel', bzImage,
      '-initrd', initrd,
      // loglevel=5 shows KERN_WARNING (WARN_ON, lockdep) but not the boot chatter. A longer
      // RCU stall timeout: TCG vCPUs on a loaded host can lag without a kernel bug.
      '-append', ['console=ttyS0 loglevel=5 printk.time=1 panic=-1 rdinit=/init rcupdate.rcu_cpu_stall_timeout=60', ...guestClockArgs(await hostTscKhz()), ...(opts.kernelArgs ?? [])].join(' '),
      '-chardev', 'stdio,id=console,signal=off',
      '-serial', 'chardev:console',
      '-serial', `file:${control}`,
      ...(land ? userlandQemuArgs(land) : []),
    ];
    let consoleText = '';
    const qemu = execa(qemuBinary, qemuArgs, { stdin: 'ignore', reject: false, buffer: false, stderr: 'pipe', encoding: 'utf8' });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      qemu.kill('SIGKILL');
    }, (opts.timeoutSec ?? 300) * 1000);
    qemu.stdout?.setEncoding('utf8');
    qemu.stdout?.on('data', (chunk: string) => {
      consoleText += chunk;
      opts.onConsole?.(chunk);
    });
    let stderr = '';
    qemu.stderr?.setEncoding('utf8');
    qemu.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
    });
    const done = await qemu;
    clearTimeout(timer);
    const report = parseControl(await readFile(control, 'utf8').catch(() => ''));
    if (!timedOut && !report.ready && done.exitCode !== 0) {
      throw new UserError(`QEMU failed (exit ${done.exitCode}): ${stderr.trim() || consoleTail(consoleText, 10)}`, ExitCode.internal);
    }
    const results = opts.outDir !== undefined && report.resultsTar ? await unpackResults(report.resultsTar, opts.outDir) : [];
    return {
      exitCode: report.exitCode,
      kernelFailure: detectKernelFailure(consoleText),
      timedOut,
      console: consoleText,
      results,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
