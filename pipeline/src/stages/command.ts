import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.ts';
import { UserError } from '../cli/errors.ts';
import { reportTable } from '../report/table.ts';
import { classifyPatch, defaultOut, exitCodeFor } from './index.ts';

const options = {
  package: { type: 'string' },
  source: { type: 'string' },
  after: { type: 'string', multiple: true },
  'build-cmd': { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  enabled: { type: 'boolean' },
} as const;

const common = `  --package NAME[=VERSION]  Debian source package, fetched with apt-get source (cached)
  --source DIR              an unpacked tree (a Debian tree with its own patches applied)
  --after P1.patch,P2.patch earlier fixes the patch is written on top of (or a quilt series
                            file listing them), applied in order before both builds
  --build-cmd CMD           build command line (default: debian/rules build-arch with
                            DEB_BUILD_OPTIONS='nocheck nostrip parallel=2'; make for other trees);
                            every build runs in a clean environment (Debian's PATH, C.UTF-8,
                            HOME=/nonexistent, none of the caller's variables)
  --out DIR                 output folder (default ./wfbuild-out/<patch name>); written whole
                            or not at all
  --json                    print report.json on stdout (no progress display)
  --enabled                 with --package NAME=VERSION: build against wfbuild enable's build
                            of it (its tree, objects and binaries: the bundles target the
                            binaries of its .debs); a patch from the package's own series goes
                            onto the enabled build without it (wfbuild enable --without)

The original build is cached under the cache root (WFPATCH_CACHE, default /var/cache/wfpatch),
keyed by package version, build command and compiler-wrapper version.
Exit: 0 kpatch-able, 3 no compiled code changed, 4 not text-only, 5 text-only but not
kpatch-able, 2 bad input (patch does not apply, binary diff, ...), 12 build failed,
13 build dependencies missing (installed with apt-get build-dep when run as root).`;

function makeCommand(name: 'build' | 'classify'): Command {
  const bundles = name === 'build';
  return {
    name,
    summary: bundles
      ? 'PATCH.diff: triage, build, diff objects, write patch bundles and report.json'
      : 'PATCH.diff: like build, but only classify (report.json, no bundles)',
    help: `Usage: wfbuild ${name} PATCH.diff (--package NAME[=VERSION] | --source DIR) [options]
${bundles ? '       wfbuild PATCH.diff ...   (same)\n' : ''}
${bundles ? 'Builds the original and the patched tree, compares the changed objects with\ncreate-diff-object and writes one patch bundle per affected binary plus report.json.' : 'Classifies a patch (text-only? kpatch-able?) and writes report.json, no bundles.'}
${common}`,
    async run(args) {
      const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
      if (positionals.length !== 1) throw new UserError(`${name}: give exactly one PATCH.diff (got ${positionals.length})`);
      const patch = positionals[0];
      const report = await classifyPatch({
        patch,
        package: values.package,
        source: values.source,
        after: (values.after ?? []).flatMap((a) => a.split(',')).filter(Boolean),
        buildCmd: values['build-cmd'],
        ...(values.enabled ? { enabled: true } : {}),
        out: values.out ?? defaultOut(patch),
        bundles,
        renderer: values.json ? 'silent' : process.stdout.isTTY ? 'default' : 'simple',
      });
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else {
        console.log(reportTable([report]));
        for (const reason of report.reasons) console.log(`  no: ${[reason.object, reason.symbol, reason.what].filter(Boolean).join(': ')}`);
        for (const note of report.notes) console.log(`  note: ${note}`);
        console.log(`written: ${values.out ?? defaultOut(patch)}`);
      }
      return exitCodeFor(report.outcome);
    },
  };
}

export const buildCommand: Command = makeCommand('build');
export const classifyCommand: Command = makeCommand('classify');
