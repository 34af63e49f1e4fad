import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { intOption } from '../cli/options.ts';
import { buildHotfixPackage, defaultMaintainer } from './index.ts';

const help = `Usage: wfbuild package OUT1 [OUT2 ...] --out DIR [options]

Builds one cumulative hot-fix .deb, <binary>-livepatch_<version>+wfpatchK.N_<arch>.deb, from
wfbuild output folders (report.json + bundle) for the same target build, in the order given:
/usr/lib/wfpatch/<build-id>/<NNNN>-<name>.wfp and .json (patch sha256, CVEs, DEP-3
description, target path and build-id, wfbuild version) per fix; Depends on the exact binary
package version; maintainer scripts that apply the fixes to running processes (postinst) and
roll them back (prerm remove). libwfpatch loads the installed fixes at every start.

Options:
  --out DIR            where the .deb goes (created)
  --depends BIN=VER    the binary package and exact version the fixes are for (default: the
                       reports' package; required for outputs built with --source)
  --not-live OUT       a wfbuild output that is not kpatch-able: listed in the description with
                       its reason (a restart is needed for it); repeatable
  --release N          N of +wfpatchK.N (default: the number of fixes)
  --maintainer M       Maintainer field (default: ${defaultMaintainer})

Exit: 0 written; 2 bad input (outputs for two targets, a live output that is not kpatch-able,
a bundle that differs from its report): nothing is written.`;

export const packageCommand: Command = {
  name: 'package',
  summary: 'a cumulative hot-fix .deb from wfbuild outputs (package OUT... --out DIR)',
  help,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string' },
        depends: { type: 'string' },
        'not-live': { type: 'string', multiple: true },
        release: { type: 'string' },
        maintainer: { type: 'string' },
        dbgsym: { type: 'boolean' },
        'no-dbgsym': { type: 'boolean' },
      },
    });
    if (values.out === undefined) throw new UserError('--out DIR is required');
    if (positionals.length === 0) throw new UserError('no wfbuild output given: wfbuild package OUT1 [OUT2 ...] --out DIR');
    if (values.dbgsym === true && values['no-dbgsym'] === true) throw new UserError('--dbgsym and --no-dbgsym contradict each other');
    const { deb, plan } = await buildHotfixPackage({
      outputs: positionals,
      notLive: values['not-live'] ?? [],
      outDir: values.out,
      depends: values.depends,
      release: intOption('release', values.release),
      maintainer: values.maintainer,
      dbgsym: values.dbgsym === true ? true : values['no-dbgsym'] === true ? false : undefined,
    });
    console.log(deb);
    for (const f of plan.fixes) console.log(`  live      ${f.stem}${f.metadata.cves.length ? ` (${f.metadata.cves.join(', ')})` : ''}`);
    for (const n of plan.notLive) console.log(`  not live  ${n.name}: ${n.reasons[0]}`);
    console.log(`  Depends: ${[`${plan.target.name} (= ${plan.target.version})`, ...plan.extraDepends].join(', ')}; build-id ${plan.buildId}`);
    return ExitCode.ok;
  },
};
