/**
 * "Confirmed against the binary" for the configure-only profiles: waf (Samba) and gyp's make
 * (Node.js). The compile-only mode configures the tree and compiles single translation units:
 * nothing is linked, and a whole build takes hours on two cores. Here the files a kpatch-able
 * unit changes are linked for it, through the compiler wrapper, so each linked file is
 * captured as linked and the log maps objects to them:
 * - waf: only the long-running libraries and modules whose link takes one of the unit's
 *   sources, with what they need (`waf build --targets=…`);
 * - make: the build's own goal (gyp's Makefiles link one program and its library).
 * The unit's objects (the walk's own, compiled before and after it) are then confirmed against
 * those files exactly as on an update base (confirm-base.ts' confirmObjects).
 *
 * One built copy of the configured tree per prepared tree is kept in the cache (beside it,
 * `built/`): the first confirmation pays for the build (hours, resumable: a killed build goes
 * on where it stopped next time), later ones and later runs rebuild incrementally. Before each
 * confirmation the copy's sources are brought to the walk's state (the tree before the unit):
 * the files undone since, and the files an earlier confirmation left different from the whole
 * series, are copied from the walk's tree (or removed where the walk has none). Build scripts
 * follow too (waf reads its wscript_build files on every build, and the whole series' scripts
 * name files the earlier tree lacks), but the configuration is the whole series' (no configure
 * per unit). waf and gyp keep absolute paths, so the copy is built bind-mounted over the
 * configured tree's path in a private mount namespace; where that is not possible, nothing is
 * confirmed, with why.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { copyTree, exists, sameBytes, writeAtomic } from '../../common/fs.ts';
import { withLock } from '../../common/lock.ts';
import { installShims, readRecords, wrapperEnv } from '../../wrapper/index.ts';
import { BuildFailed, bindMountAvailable, runBuild } from '../../stages/build-command.ts';
import { debianPath } from '../../stages/build-env.ts';
import type { OriginalBuild } from '../../stages/context.ts';
import { isLongRunning, type Services } from '../services.ts';
import type { UnitVerdict } from '../results.ts';
import { confirmVerdict } from '../confirm.ts';
import { confirmObjects, type BaseConfirmation } from './confirm-base.ts';
import { failureLine, newestIn, stampAfter } from './relink.ts';
import { wafEnv } from './samba.ts';
import type { Measured } from './walk.ts';
import { affectedUnits } from './affected.ts';
import { rebase, type TranslationUnit } from './database.ts';

/** One file waf links: its task generator (a `--targets` name), output and compiled sources (tree-relative). */
export interface WafLink {
  readonly target: string;
  readonly output: string;
  readonly sources: readonly string[];
}

/**
 * A waf command that builds nothing and writes every link of the build (WFLINKS_OUT, JSON:
 * WafLink[]): each task generator posted as a build would, each link task's object inputs
 * mapped back to the compile task that made them. It stores no build state, so it may run
 * beside a build. The program is constant; waf's arguments follow it.
 */
const wafLinksProgram = String.raw`
import json, os, runpy, sys
waf = os.path.abspath('buildtools/bin/waf')
sys.path.insert(0, os.path.abspath('third_party/waf'))
from waflib import Build, Logs

# Named BuildContext: wafsamba's RECURSE accepts only build context classes it knows by name.
class BuildContext(Build.BuildContext):
    cmd = 'wflinks'
    def store(self):
        pass
    def get_build_iterator(self):
        tasks = []
        for i, g in enumerate(self.groups):
            self.current_group = i
            for tg in g:
                if hasattr(tg, 'post'):
                    tg.post()
            tasks.extend(self.get_tasks_group(i))
        source_of = {}
        for t in tasks:
            if t.__class__.__name__ in ('c', 'cxx') and t.inputs and t.outputs:
                source_of[t.outputs[0]] = t.inputs[0].path_from(self.srcnode)
        links = []
        for g in self.groups:
            for tg in g:
                lt = getattr(tg, 'link_task', None)
                if lt is None or not lt.outputs:
                    continue
                links.append({'target': tg.name, 'output': lt.outputs[0].path_from(self.srcnode),
                              'sources': sorted(set(source_of[n] for n in lt.inputs if n in source_of))})
        with open(os.environ['WFLINKS_OUT'], 'w') as f:
            json.dump(links, f)
        Logs.info('wflinks: %d linked files', len(links))
        while 1:
            yield []

sys.argv = [waf] + sys.argv[1:]
runpy.run_path(waf, run_name='__main__')
`;

/** The links that take one of `sources` and are long-running (pure). */
export function linksFor(links: readonly WafLink[], sources: readonly string[], services: Services | undefined): WafLink[] {
  const wanted = new Set(sources);
  return links.filter((l) => l.sources.some((s) => wanted.has(s)) && (!services || isLongRunning(services, l.output)));
}

/** What the built copy's sources are, kept beside it (state.json). */
interface BuiltState {
  /** The configuration the copy was made from (a hash of waf's stored configuration). */
  readonly configured: string;
  /** Tree-relative files that may differ from the configured tree (the whole series). */
  readonly files: readonly string[];
}

/** How a profile's build system lists and builds what a unit's sources are linked into. */
export interface LinkStrategy {
  /** Said in reasons: "waf", "make". */
  readonly name: string;
  /** The file (tree-relative) holding the configuration: a copy made from another is made again. */
  readonly configuration: string;
  /** The build's links, or null when the build links its whole goal anyway (make). */
  readonly lists: boolean;
  /** The build command for these targets (every target when `lists` is false). */
  argv(targets: readonly string[], jobs: number): string[];
  readonly env: Readonly<Record<string, string>>;
}

export const wafStrategy: LinkStrategy = {
  name: 'waf',
  configuration: 'bin/c4che/_cache.py',
  lists: true,
  argv: (targets, jobs) => ['python3', 'buildtools/bin/waf', 'build', `-j${Math.max(1, jobs)}`, `--targets=${targets.join(',')}`],
  env: wafEnv,
};

/** gyp's make (a make-dry-run profile): the goal the compile database came from, in `dir` with `args`. */
export function makeStrategy(dir: string, args: readonly string[]): LinkStrategy {
  return {
    name: 'make',
    configuration: join(dir, 'Makefile'),
    lists: false,
    argv: (_targets, jobs) => ['make', '-C', dir, `-j${Math.max(1, jobs)}`, ...args.filter((a) => !a.startsWith('V='))],
    env: {},
  };
}

export interface BuiltCopyOptions {
  readonly strategy: LinkStrategy;
  /** The configured tree (the whole series; never modified here): its path is where the copy builds. */
  readonly configured: string;
  /** The walk's copy of the tree, where the series is being undone. */
  readonly walkTree: string;
  /** The configured tree's compile database (paths in `configured`): whose includers to rebuild. */
  readonly database: readonly TranslationUnit[];
  /** The kept built copy's folder (tree/, records/, linked/, shims/, state.json). */
  readonly built: string;
  /** A folder of this run for bundles (close() removes it). */
  readonly work: string;
  readonly jobs: number;
  readonly services?: Services;
  readonly log: (line: string) => void;
}

/** Where the confirmations stand: said in every reason and in a confirmation's `how`. */
const where = 'on the series before the unit, its long-running files linked';

async function configurationOf(tree: string, file: string): Promise<string> {
  const stored = await readFile(join(tree, file)).catch(() => Buffer.from(''));
  return createHash('sha256').update(stored).digest('hex').slice(0, 16);
}

export class BuiltCopyBinaries {
  /** Files the walk undid since the last confirmation. */
  private readonly pending = new Set<string>();
  private broken: string | null = null;
  private readonly tree: string;
  private readonly linked: string;
  private readonly records: string;
  private readonly shims: string;
  private readonly lock: string;

  constructor(private readonly opts: BuiltCopyOptions) {
    this.tree = join(opts.built, 'tree');
    this.linked = join(opts.built, 'linked');
    this.records = join(opts.built, 'records');
    this.shims = join(opts.built, 'shims');
    this.lock = `${opts.built}.lock`;
  }

  undone(_patch: string, files: readonly string[]): void {
    for (const file of files) this.pending.add(file);
  }

  /** The unit's objects confirmed against the files it changes, linked from the tree before it. */
  async confirm(unit: string, measured: Measured, patchFile: string): Promise<BaseConfirmation> {
    if (this.broken !== null) return { kind: 'unconfirmed', why: `${where}: ${this.broken}` };
    if (!(await bindMountAvailable())) return { kind: 'unconfirmed', why: `${where}: ${this.opts.strategy.name}'s configuration keeps absolute paths and the copy cannot be bind-mounted over the configured tree here (needs root and unshare)` };
    return withLock(this.lock, async () => {
      const build = await this.linkedFor(unit, measured.objects.units.map((u) => u.source));
      if (typeof build === 'string') return { kind: 'unconfirmed', why: `${where}: ${build}` } as const;
      return confirmObjects({ build, objects: measured.objects, patchFile, ...(this.opts.services ? { services: this.opts.services } : {}), scratch: join(this.opts.work, 'scratch'), where });
    }, (owner) => this.opts.log(`  waiting for process ${owner}, which builds in ${this.opts.built}`));
  }

  /** As SeriesBinaries.confirmVerdict (relink.ts): kept and confirmed, downgraded with the dry run's reason, or unconfirmed with why. */
  async confirmVerdict<V extends UnitVerdict>(unit: string, v: V, measured: Measured): Promise<V & { checkedOn: string }> {
    const patchFile = join(this.opts.work, 'unit.patch');
    await mkdir(this.opts.work, { recursive: true });
    await writeFile(patchFile, measured.texts.join('\n'));
    const outcome = this.withoutBuildPaths(await this.confirm(unit, measured, patchFile));
    this.opts.log(`${unit}: ${outcome.kind === 'checked' ? outcome.checks.map((c) => `${c.binary} ${c.ok ? 'ok' : c.line}`).join('; ') : outcome.why}`);
    const checkedOn = 'checked on the series before it, its long-running files linked';
    if (outcome.kind === 'unconfirmed') return { ...v, checkedOn, confirmation: { confirmed: false, binaries: [], how: outcome.why } };
    const checked = confirmVerdict(v, outcome.checks);
    const c = checked.confirmation;
    return { ...checked, checkedOn, ...(c ? { confirmation: { ...c, how: `${c.how} (against the files ${this.opts.strategy.name} links for it from the series before the unit, configured once on the whole series)` } } : {}) };
  }

  async close(): Promise<void> {
    await rm(this.opts.work, { recursive: true, force: true });
  }

  private withoutBuildPaths(outcome: BaseConfirmation): BaseConfirmation {
    const strip = (text: string): string => [`${this.linked}/`, `${this.tree}/`, `${this.opts.work}/`].reduce((t, prefix) => t.split(prefix).join(''), text);
    return outcome.kind === 'checked' ? { ...outcome, checks: outcome.checks.map((c) => ({ ...c, line: strip(c.line) })) } : { ...outcome, why: strip(outcome.why) };
  }

  /** The built copy at the walk's state with the files linking `sources` built, or why not. */
  private async linkedFor(unit: string, sources: readonly string[]): Promise<OriginalBuild | string> {
    const state = await this.ready();
    await this.sync(state);
    let targets: string[] = [];
    if (this.opts.strategy.lists) {
      const links = await this.links();
      if (typeof links === 'string') return links;
      const chosen = linksFor(links, sources, this.opts.services);
      if (chosen.length === 0) return `no long-running file of this build links ${sources.join(', ')}`;
      targets = [...new Set(chosen.map((l) => l.target))].sort();
      this.opts.log(`  linking ${targets.join(', ')} from the series before ${unit} (waf build --targets, with what they need)`);
    } else this.opts.log(`  building the series before ${unit} (${this.opts.strategy.argv([], this.opts.jobs).join(' ')}; incremental after the first time)`);
    const started = performance.now();
    try {
      await this.build(targets, `linking the files ${unit} changes`);
    } catch (error) {
      if (!(error instanceof BuildFailed)) throw error;
      this.broken = `the ${this.opts.strategy.name} build${targets.length ? ` of ${targets.join(', ')}` : ''} before ${unit} failed: ${failureLine(error.message)}`;
      return this.broken;
    }
    this.opts.log(`  linked (${Math.round((performance.now() - started) / 1000)} s)`);
    const log = await readRecords(this.opts.configured, this.records, this.linked);
    return { key: `${this.opts.strategy.name}-linked`, dir: this.opts.built, tree: this.tree, log, shipped: null, cached: false, makes: [], linked: this.linked };
  }

  /** The built copy exists and was made from this configuration; its state. */
  private async ready(): Promise<BuiltState> {
    const configured = await configurationOf(this.opts.configured, this.opts.strategy.configuration);
    const path = join(this.opts.built, 'state.json');
    const stored = JSON.parse(await readFile(path, 'utf8').catch(() => 'null')) as BuiltState | null;
    if (stored && stored.configured === configured && (await exists(this.tree))) return stored;
    this.opts.log(`  copying the configured tree to build in (${this.opts.built})`);
    await rm(this.opts.built, { recursive: true, force: true });
    await mkdir(this.opts.built, { recursive: true });
    await copyTree(this.opts.configured, this.tree);
    await mkdir(this.records);
    await mkdir(this.linked);
    const fresh: BuiltState = { configured, files: [] };
    await writeAtomic(path, JSON.stringify(fresh) + '\n');
    return fresh;
  }

  /** The copy's sources made the walk's: every file that may differ, copied or removed. */
  private async sync(state: BuiltState): Promise<void> {
    const files = [...new Set([...state.files, ...this.pending])].sort();
    const differing: string[] = [];
    const copied: string[] = [];
    for (const file of files) {
      const from = join(this.opts.walkTree, file);
      const to = join(this.tree, file);
      if (await exists(from)) {
        if (!(await exists(to)) || !(await sameBytes(from, to))) {
          await mkdir(dirname(to), { recursive: true });
          await copyFile(from, to);
          copied.push(file);
        }
      } else await rm(to, { force: true });
      const whole = join(this.opts.configured, file);
      const same = (await exists(whole)) ? (await exists(to)) && (await sameBytes(whole, to)) : !(await exists(to));
      if (!same) differing.push(file);
    }
    // make decides by mtimes: the copied files must be newer than everything built from them,
    // whatever the clock did since — with the sources that include a copied header, for
    // Makefiles that know no header dependencies (relink.ts does the same).
    if (copied.length > 0) {
      const database = this.opts.database.map((u) => rebase(u, this.opts.configured, this.tree));
      const includers = (await affectedUnits(this.tree, copied, database)).units.map((a) => a.unit.source);
      await stampAfter(this.tree, [...new Set([...copied, ...includers])], await newestIn(this.tree));
    }
    await writeAtomic(join(this.opts.built, 'state.json'), JSON.stringify({ configured: state.configured, files: differing } satisfies BuiltState) + '\n');
    this.pending.clear();
  }

  /** Every link of the build as the copy's scripts now say (wafLinksProgram). */
  private async links(): Promise<WafLink[] | string> {
    const out = join(this.opts.built, 'links.json');
    try {
      await runBuild({ display: 'waf wflinks', argv: ['python3', '-c', wafLinksProgram, 'wflinks'], env: { ...wafEnv, WFLINKS_OUT: out } }, this.tree, {}, 'listing what waf links', this.opts.configured);
    } catch (error) {
      if (!(error instanceof BuildFailed)) throw error;
      return `waf cannot list its links: ${failureLine(error.message)}`;
    }
    return JSON.parse(await readFile(out, 'utf8')) as WafLink[];
  }

  /** waf build of `targets` in the copy, through fresh shims recording into the kept records. */
  private async build(targets: readonly string[], what: string): Promise<void> {
    await rm(this.shims, { recursive: true, force: true });
    await installShims(this.shims);
    const wrapper = wrapperEnv(this.shims, this.records, this.opts.configured, this.opts.strategy.env.PATH ?? debianPath);
    const argv = this.opts.strategy.argv(targets, this.opts.jobs);
    await runBuild({ display: argv.join(' '), argv, env: { ...this.opts.strategy.env } }, this.tree, wrapper, what, this.opts.configured, 'patched');
  }
}
