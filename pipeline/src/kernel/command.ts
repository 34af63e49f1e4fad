import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { buildKernel } from './build.ts';
import { packageKernel } from './package.ts';
import { kernelVariants, type KernelVariant } from './config.ts';

const help = `Usage: wfbuild kernel build [--variant debug|bench|debian|debian-modules] [--patches DIR] [--config DIR] [--quiet]
       wfbuild kernel package [same options]

Builds the guest kernel: Debian's /usr/src/linux-source-6.1.tar.xz, kernel/patches/series
applied in order, kernel/config fragments merged on tinyconfig (base.config, every
non-variant fragment such as wfgen.config, then <variant>.config), make bzImage.
Cached under $WFPATCH_CACHE/kernel/out (default /var/cache/wfpatch) by a hash of the
source version, the series and the fragments; an unchanged rebuild returns at once.

Options:
  --variant V    debug (default: DEBUG_VM, lockdep, atomic-sleep checks), bench, or
                 debian (Debian's amd64 configuration from linux-config-6.1 without
                 modules and debug info, + wfgen.config + debian.config; long build),
                 or debian-modules (the same with Debian's modules, for 'package' on a
                 real machine)
  --patches DIR  folder with 'series' and the patches (default kernel/patches)
  --config DIR   folder with the *.config fragments (default kernel/config)
  --quiet        no compiler output, only the result

Prints the kernel version, the cache key and the bzImage path.

'package' builds (or reuses) the kernel, then makes Debian packages of it with the kernel's
own 'make bindeb-pkg' (linux-image-<release>, e.g. linux-image-6.1.192-wfpatch, plus
linux-headers and linux-libc-dev), kept next to the bzImage; prints the .deb paths.
See kernel/README.md for installing one on a Debian 12 machine and going back.
Exit: 0 built or cached; 12 build failed (a patch that does not apply, a dropped config
option, a compiler error); 13 a Debian package is missing; 2 bad option.`;

export function parseVariant(value: string | undefined): KernelVariant {
  if (value === undefined) return 'debug';
  if (!(kernelVariants as readonly string[]).includes(value)) {
    throw new UserError(`--variant must be ${kernelVariants.join(' or ')}, got '${value}'`);
  }
  return value as KernelVariant;
}

export const kernelCommand: Command = {
  name: 'kernel',
  summary: 'build the guest kernel (linux-source-6.1 + kernel/patches + kernel/config), cached; package it as a .deb',
  help,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        variant: { type: 'string' },
        patches: { type: 'string' },
        config: { type: 'string' },
        quiet: { type: 'boolean' },
      },
    });
    if (positionals.length !== 1 || (positionals[0] !== 'build' && positionals[0] !== 'package')) {
      throw new UserError(`expected 'wfbuild kernel build|package [options]', got '${positionals.join(' ')}' (see wfbuild kernel --help)`);
    }
    if (positionals[0] === 'package') {
      const pkg = await packageKernel({
        variant: parseVariant(values.variant),
        patchesDir: values.patches,
        configDir: values.config,
        onOutput: values.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      console.log(`package ${pkg.packageName} ${pkg.packageVersion} (${pkg.cached ? 'cached' : 'built'})`);
      for (const deb of pkg.debs) console.log(`deb ${deb}`);
      return ExitCode.ok;
    }
    const build = await buildKernel({
      variant: parseVariant(values.variant),
      patchesDir: values.patches,
      configDir: values.config,
      onOutput: values.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    console.log(`kernel ${build.version} (${build.cached ? 'cached' : 'built'})`);
    console.log(`cache key ${build.cacheKey}`);
    console.log(`bzImage ${build.bzImage}`);
    return ExitCode.ok;
  },
};
