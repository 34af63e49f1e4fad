import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { intOption } from '../cli/options.ts';
import { parseVariant } from '../kernel/command.ts';
import { buildKernel } from '../kernel/build.ts';
import { checkRunOptions, runInVm, type RunInVmOptions } from './run.ts';
import { consoleTail } from './console.ts';
import type { GuestFile } from './initramfs.ts';

const help = `Usage: wfbuild vm run [options] -- PROGRAM [ARGS...]

Boots the guest kernel (QEMU, TCG) with an initramfs of busybox, PROGRAM, every --file and
the shared libraries they need; mounts /proc /sys /dev /dev/pts /dev/shm /tmp, brings up
lo, runs PROGRAM (at its host path) with the --env variables, streams the console, and
exits with PROGRAM's exit status.

Options:
  --variant V       kernel variant: debug (default), bench or debian (built on first use)
  --cpus N          virtual CPUs (default 2)
  --mem MiB         guest memory (default 1024)
  --timeout S       kill the guest after S seconds (default 300)
  --file HOST[:GUEST]  copy a host file into the guest (default: same path); repeatable
  --env K=V         environment variable for PROGRAM; repeatable
  --out DIR         copy the guest's /results folder (env WFVM_RESULTS) to DIR
  --quiet           do not stream the console
  --kernel-arg P    extra kernel command-line parameter (e.g. numa=fake=2); repeatable
  --userland[=host|rootfs]  run PROGRAM in a Debian userland (dpkg, packages and services
                    work; nothing reaches the host; /results, /tmp, /run are the guest's):
                    host (the default of a bare --userland): the host's / shared read-only over
                    virtio-9p under a tmpfs overlay — everything the host has, but dpkg reads the
                    host's whole package database over 9p (minutes per dpkg -i under TCG);
                    rootfs: a small Debian 12 machine, a per-run copy of a debootstrap'd minbase
                    root (cached) shared read-write over 9p; PROGRAM and --file files are copied
                    into it, their libraries come from the root
  --rootfs-package P  with --userland=rootfs: a package for the root beside minbase (debootstrap
                    --include, with its dependencies); repeatable
  --share DIR       with --userland=rootfs: a host folder shared read-only at the same path
                    (virtio-9p); repeatable

Exit: PROGRAM's status; 10 the kernel reported BUG/WARNING/Oops/panic/lockdep/KASAN (even
if PROGRAM exited 0); 11 the guest hung and was killed at the timeout; 2 bad option or
unreadable file; 13 QEMU or busybox-static missing.`;

export function parseFileOption(spec: string): GuestFile {
  const colon = spec.indexOf(':');
  if (colon === 0) throw new UserError(`--file '${spec}': empty host path`);
  if (colon < 0) return { host: spec };
  const guest = spec.slice(colon + 1);
  if (guest === '') throw new UserError(`--file '${spec}': empty guest path`);
  return { host: spec.slice(0, colon), guest };
}

export function parseEnvOption(spec: string): [string, string] {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new UserError(`--env '${spec}': expected K=V`);
  return [spec.slice(0, eq), spec.slice(eq + 1)];
}

export function parseUserland(mode: string | undefined, packages: readonly string[], shares: readonly string[]): RunInVmOptions['userland'] {
  if (mode === undefined || mode === 'host') {
    if (packages.length > 0 || shares.length > 0) throw new UserError('--rootfs-package and --share need --userland=rootfs');
    return mode === 'host' ? 'host' : undefined;
  }
  if (mode !== 'rootfs') throw new UserError(`--userland=${mode}: expected host or rootfs`);
  for (const p of packages) if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p)) throw new UserError(`--rootfs-package '${p}': not a Debian package name`);
  return { kind: 'rootfs', packages, shares };
}

export const vmCommand: Command = {
  name: 'vm',
  summary: 'run a program in a QEMU guest with the wfpatch kernel (vm run -- PROGRAM ...)',
  help,
  async run(args) {
    // A bare --userland (before the PROGRAM's `--`) means the host root, as it always did.
    const end = args.indexOf('--');
    const normalized = args.map((a, i) => (a === '--userland' && (end < 0 || i < end) ? '--userland=host' : a));
    const { values, positionals } = parseArgs({
      args: normalized,
      allowPositionals: true,
      strict: true,
      options: {
        variant: { type: 'string' },
        cpus: { type: 'string' },
        mem: { type: 'string' },
        timeout: { type: 'string' },
        file: { type: 'string', multiple: true },
        env: { type: 'string', multiple: true },
        out: { type: 'string' },
        quiet: { type: 'boolean' },
        'kernel-arg': { type: 'string', multiple: true },
        userland: { type: 'string' },
        'rootfs-package': { type: 'string', multiple: true },
        share: { type: 'string', multiple: true },
      },
    });
    const [sub, program, ...programArgs] = positionals;
    if (sub !== 'run') throw new UserError(`expected 'wfbuild vm run [options] -- PROGRAM [ARGS...]' (see wfbuild vm --help)`);
    if (program === undefined) throw new UserError('no PROGRAM given (wfbuild vm run [options] -- PROGRAM [ARGS...])');
    const timeoutSec = intOption('timeout', values.timeout) ?? 300;
    const variant = parseVariant(values.variant);
    const options = {
      variant,
      cpus: intOption('cpus', values.cpus),
      memMiB: intOption('mem', values.mem),
      timeoutSec,
      files: (values.file ?? []).map(parseFileOption),
      env: Object.fromEntries((values.env ?? []).map(parseEnvOption)),
      outDir: values.out,
      program,
      args: programArgs,
      kernelArgs: values['kernel-arg'],
      userland: parseUserland(values.userland, values['rootfs-package'] ?? [], values.share ?? []),
    };
    // Validate everything (program, files, options) before a kernel build that may take minutes.
    await checkRunOptions(options);
    const kernel = await buildKernel({
      variant,
      onOutput: values.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    const result = await runInVm({
      ...options,
      bzImage: kernel.bzImage,
      onConsole: values.quiet ? undefined : (text) => process.stdout.write(text),
    });
    if (result.kernelFailure !== null) {
      console.error(`wfbuild vm: the guest kernel reported a failure (program exit status: ${result.exitCode ?? 'none'}):\n${result.kernelFailure}`);
      return ExitCode.kernelFailure;
    }
    if (result.timedOut) {
      console.error(`wfbuild vm: the guest did not finish within ${timeoutSec} s and was killed; console tail:\n${consoleTail(result.console)}`);
      return ExitCode.guestTimeout;
    }
    if (result.exitCode === null) {
      console.error(`wfbuild vm: the guest stopped without reporting the program's exit status; console tail:\n${consoleTail(result.console)}`);
      return ExitCode.kernelFailure;
    }
    if (values.out !== undefined) console.error(`wfbuild vm: ${result.results.length} result file(s) in ${values.out}`);
    return result.exitCode;
  },
};
