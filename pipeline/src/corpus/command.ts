import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.ts';
import { ExitCode } from '../cli/errors.ts';
import { intOption } from '../cli/options.ts';
import { corpusPackages, generateManifest, manifestCves, paperPackages, widerPackages, writeManifest } from './manifest.ts';
import { parseJobs, parsePackages, parseUnits, parseView } from './options.ts';
import { defaultResultsDir } from './results-file.ts';

const help = `Usage: wfbuild corpus [--packages P,…] [--jobs N] [--view corpus|update|series] [--out DIR] [--no-builds]
                      [--full-builds] [--tu-limit N] [--units ID,…]
       wfbuild corpus manifest [--packages P,…]

The paper's six packages on Debian 12 (${paperPackages.join(', ')}) and more network servers
(${widerPackages.join(', ')}): which of their Debian patches are text-only and kpatch-able.

  corpus            classifies the selected units of corpus/bookworm/<package>.json, resumable:
                    a unit already classified with the same inputs is not redone. memcached
                    and the other servers go through the whole pipeline (one original build
                    per base tree, cached); openldap, apache2, samba, mariadb, nodejs and nginx
                    in compile-only mode: configure (or build) once, then per unit compile only
                    the translation units it touches, before and after, in series order. Writes corpus/results/bookworm.{json,md}.
  corpus manifest   asks the registry (apt) which versions exist and can be fetched, downloads
                    them to the cache, and rewrites corpus/bookworm/<package>.json.

Options:
  --packages P,…    only these packages (default: all ${corpusPackages.length})
  --jobs N          parallel compile jobs per build (default 2)
  --view V          which units: 'corpus' (default: a package's bookworm-update units where it
                    has any, else its series walk), 'update' (update units only), 'series'
                    (every unit of the series walk)
  --out DIR         where bookworm.{json,md} go (default corpus/results); results of packages
                    not run now are kept from the file there when it used the same view
  --no-builds       build nothing: write the results classified so far (also from earlier
                    tool versions, flagged) plus units that need no build (no compiled file
                    touched); the others are counted as pending
  --full-builds     the whole pipeline for every package (a build per unit: hours for the
                    big three)
  --tu-limit N      compile-only: a unit that affects more translation units than N fails
                    with the count (default: 800 for the C packages, 120 for C++)
  --units ID,…      classify only these units of the selected packages (as corpus/bookworm
                    names them) anew; the others are reported from the cache as with
                    --no-builds (after a fix that concerns one unit, without re-running all)

See corpus/README.md for the rules that choose the units.`;

async function runManifest(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { packages: { type: 'string' } }, strict: true, allowPositionals: false });
  const packages = parsePackages(values.packages);
  for (const pkg of packages) {
    const manifest = await generateManifest(pkg, (line) => console.error(line));
    const path = await writeManifest(manifest);
    const update = manifest.units.filter((u) => u.views.includes('update'));
    const unavailable = manifest.versions.filter((v) => v.status !== 'complete').map((v) => `${v.version} (${v.status})`);
    console.log(
      `${pkg}: ${path} — base ${manifest.baseVersion}, ${manifest.units.length} units (${update.length} from updates, kind ${manifest.update.kind}), ` +
        `${manifestCves(manifest).length} CVEs${unavailable.length ? `; not fully fetchable: ${unavailable.join(', ')}` : ''}`,
    );
  }
  return ExitCode.ok;
}

async function runCorpusCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { packages: { type: 'string' }, jobs: { type: 'string' }, view: { type: 'string' }, out: { type: 'string' }, 'no-builds': { type: 'boolean' }, 'full-builds': { type: 'boolean' }, 'tu-limit': { type: 'string' }, units: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  const outDir = values.out ?? defaultResultsDir;
  const opts = {
    packages: parsePackages(values.packages),
    jobs: parseJobs(values.jobs),
    view: parseView(values.view),
    outDir,
    noBuilds: values['no-builds'] === true,
    fullBuilds: values['full-builds'] === true,
    limit: intOption('tu-limit', values['tu-limit']),
    ...(values.units !== undefined ? { units: parseUnits(values.units) } : {}),
    log: (line: string) => console.error(line),
  };
  // Loaded on use: the run pulls in the whole pipeline, which 'corpus manifest' does not need.
  const { runCorpus, summaryLine } = await import('./run.ts');
  console.log(summaryLine(await runCorpus(opts), outDir));
  return ExitCode.ok;
}

export const corpusCommand: Command = {
  name: 'corpus',
  summary: "classify the six packages' Debian 12 patches (text-only, kpatch-able); 'corpus manifest' regenerates the unit lists",
  help,
  async run(args) {
    if (args[0] === 'manifest') return runManifest(args.slice(1));
    return runCorpusCommand(args);
  },
};
