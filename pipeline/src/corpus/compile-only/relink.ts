/**
 * "Confirmed against the binary" for the series walk (build-log profiles: the prepared tree is
 * the pipeline's original build through the compiler wrapper). A unit at series position k is
 * judged on the tree holding patches [0, k), so its bundle must be dry-run in the binaries of
 * that tree — not in the whole series' binaries, which hold every later patch too (a later
 * patch to the same function: create-diff-object --binary refuses the unit's "before" code).
 *
 * One private copy of the built whole-series tree follows the walk: before a unit is confirmed,
 * the sources the walk has undone since the last rebuild are copied into it, stamped newer than
 * every file of the tree (make decides by mtimes; the walk's `patch -R` stamps with a clock that
 * may be behind the cached build) — with the sources of every translation unit that includes an
 * undone header, for builds whose Makefiles know no header dependencies — and the make invocations the wrapper recorded for the original
 * build are re-run there (wrapper/make-records.ts, as the pipeline's patched build re-runs them),
 * through the wrapper, so each relinked binary is captured as linked. The unit's objects (the
 * walk's own, compiled before and after it) are then confirmed against those binaries exactly as
 * on an update base (confirm-base.ts' confirmObjects). One incremental rebuild per confirmed
 * unit, never a package build per unit.
 *
 * Build-system files (Makefile.in, *.mk, contrib Makefiles) are left at the whole series: the
 * recorded makes do not re-run configure, and the walk compiles every unit with the whole
 * series' compile calls too, so objects and binaries are built the same way (openldap's trees
 * before `contrib-makefiles` do not build at all). A unit that itself changes one is not
 * confirmed; a rebuild that fails leaves this and every earlier unit unconfirmed, with why.
 */
import { copyFile, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { copyTree, exists } from '../../common/fs.ts';
import { classifyPath } from '../../triage/files.ts';
import { installShims, readRecords, wrapperEnv } from '../../wrapper/index.ts';
import { replayable, replayEnv, type MakeInvocation } from '../../wrapper/make-records.ts';
import { BuildFailed, bindMountAvailable, runBuild } from '../../stages/build-command.ts';
import { reproducibleEnv } from '../../stages/reproducible.ts';
import type { OriginalBuild } from '../../stages/context.ts';
import type { Services } from '../services.ts';
import type { UnitVerdict } from '../results.ts';
import { confirmVerdict } from '../confirm.ts';
import { confirmObjects, type BaseConfirmation, type UnitObjects } from './confirm-base.ts';
import { affectedUnits } from './affected.ts';
import { fromBuildLog, rebase } from './database.ts';
import type { Measured } from './walk.ts';

export interface SeriesBinariesOptions {
  /** The whole series' original build (cached, never modified): log, recorded makes, binaries. */
  readonly original: OriginalBuild;
  /** The walk's copy of the tree, where the series is being undone. */
  readonly walkTree: string;
  /** A folder of this run for the built copy, its captured binaries and bundles (close() removes it). */
  readonly work: string;
  readonly services?: Services;
  readonly log: (line: string) => void;
}

/** Where the confirmations stand: said in every reason and in a confirmation's `how`. */
const where = 'on the series before the unit, rebuilt';

/** The newest mtime in `tree`, in seconds. */
export async function newestIn(tree: string): Promise<number> {
  const listing = await execa('find', ['.', '-printf', '%T@\n'], { cwd: tree, maxBuffer: 1 << 28 });
  return listing.stdout.split('\n').reduce((max, line) => (line && Number(line) > max ? Number(line) : max), 0);
}

/**
 * Gives `files` an mtime after `newest` (the tree's before they were copied in): make then
 * rebuilds what depends on them, whatever the clock did since the tree was built. The clock's
 * time when that is later (make warns of times in the future).
 */
export async function stampAfter(tree: string, files: readonly string[], newest: number): Promise<void> {
  const now = Date.now() / 1000;
  // make compares nanosecond times: a hundredth of a second after the newest file is newer.
  const when = new Date(Math.max(now, newest + 0.01) * 1000);
  for (const file of files) if (await exists(join(tree, file))) await utimes(join(tree, file), when, when);
}

/**
 * The telling part of a BuildFailed message (build-command.ts): the command, then the error
 * lines it found, else the output's last lines — without the log's path (a scratch folder).
 */
export function failureLine(message: string): string {
  const lines = message.split('\n');
  const head = lines[0]!.replace(/:$/, '');
  const errorAt = lines.indexOf('the error:');
  const tailAt = lines.indexOf('last lines:');
  const errors = errorAt >= 0 ? lines.slice(errorAt + 1, lines.findIndex((l, i) => i > errorAt && !l.startsWith('  '))) : [];
  const noise = /^make(\[\d+\])?: (Entering|Leaving) directory|^\s*$/;
  const telling = errors.length > 0 ? errors : tailAt >= 0 ? lines.slice(tailAt + 1).filter((l) => !noise.test(l)).slice(-3) : [];
  return [head, ...telling.map((l) => l.trim())].join(': ').slice(0, 500);
}

export class SeriesBinaries {
  /** Files undone in the walk since the binaries were last rebuilt. */
  private readonly pending = new Set<string>();
  /** Build-system files undone in the walk, left at the whole series here: file → patch. */
  private readonly kept = new Map<string, string>();
  /** Why no later confirmation can be made (a failed rebuild, makes that cannot be re-run). */
  private broken: string | null = null;
  private copied = false;
  private rebuilds = 0;
  private readonly tree: string;
  private readonly linked: string;

  constructor(private readonly opts: SeriesBinariesOptions) {
    this.tree = join(opts.work, 'tree');
    this.linked = join(opts.work, 'linked');
  }

  /** The walk undid a series patch: `files` changed in its tree (build-time copies included). */
  undone(patch: string, files: readonly string[]): void {
    for (const file of files) {
      if (classifyPath(file) === 'build-system') this.kept.set(file, patch);
      else this.pending.add(file);
    }
  }

  /** The unit's objects confirmed against the binaries of the tree before it. */
  async confirm(unit: string, touched: readonly string[], objects: UnitObjects, patchFile: string): Promise<BaseConfirmation> {
    const buildFiles = touched.filter((f) => classifyPath(f) === 'build-system');
    if (buildFiles.length > 0) return { kind: 'unconfirmed', why: `${where}: the unit changes ${buildFiles.join(', ')}, which an incremental rebuild does not follow` };
    const build = await this.rebuilt(unit);
    if (typeof build === 'string') return { kind: 'unconfirmed', why: `${where}: ${build}` };
    return confirmObjects({ build, objects, patchFile, ...(this.opts.services ? { services: this.opts.services } : {}), scratch: join(this.opts.work, 'scratch'), where });
  }

  /**
   * A kpatch-able verdict of the walk (the tree now before the unit) confirmed: kept and marked
   * confirmed when every bundle passes the dry run, downgraded to text-only with the dry run's
   * reason when one fails (confirm.ts' confirmVerdict), left kpatch-able but unconfirmed, with
   * why, when it cannot be checked here.
   */
  async confirmVerdict<V extends UnitVerdict>(unit: string, v: V, measured: Measured): Promise<V & { checkedOn: string }> {
    const patchFile = join(this.opts.work, 'unit.patch');
    await mkdir(this.opts.work, { recursive: true });
    await writeFile(patchFile, measured.texts.join('\n'));
    const outcome = this.withoutWorkPaths(await this.confirm(unit, measured.touched, measured.objects, patchFile));
    this.opts.log(`${unit}: ${outcome.kind === 'checked' ? outcome.checks.map((c) => `${c.binary} ${c.ok ? 'ok' : c.line}`).join('; ') : outcome.why}`);
    const checkedOn = 'checked on the series before it, rebuilt';
    if (outcome.kind === 'unconfirmed') return { ...v, checkedOn, confirmation: { confirmed: false, binaries: [], how: outcome.why } };
    const checked = confirmVerdict(v, outcome.checks);
    const c = checked.confirmation;
    return { ...checked, checkedOn, ...(c ? { confirmation: { ...c, how: `${c.how} (${this.describe()})` } } : {}) };
  }

  /** Results name binaries as the build does, not by this run's scratch folder (its pid). */
  private withoutWorkPaths(outcome: BaseConfirmation): BaseConfirmation {
    const strip = (text: string): string => [`${this.linked}/`, `${this.tree}/`, `${this.opts.work}/`].reduce((t, prefix) => t.split(prefix).join(''), text);
    return outcome.kind === 'checked' ? { ...outcome, checks: outcome.checks.map((c) => ({ ...c, line: strip(c.line) })) } : { ...outcome, why: strip(outcome.why) };
  }

  /** What a confirmation's `how` adds: where the binaries came from. */
  describe(): string {
    const kept = [...this.kept].map(([file, patch]) => `${file} (${patch})`);
    return `against the binaries rebuilt from the series before the unit (the original build's recorded makes re-run)${kept.length ? `; build-system files left at the whole series: ${kept.join(', ')}` : ''}`;
  }

  async close(): Promise<void> {
    await rm(this.opts.work, { recursive: true, force: true });
  }

  /** The build whose binaries hold the walk's tree as it is now, or why there is none. */
  private async rebuilt(unit: string): Promise<OriginalBuild | string> {
    if (this.broken !== null) return this.broken;
    const { original } = this.opts;
    if (!this.copied) {
      const check = await replayable(original.log, original.makes, original.tree);
      if (!check.ok) {
        this.broken = `the original build's makes cannot be re-run (${check.why})`;
        return this.broken;
      }
      this.opts.log(`  copying the built tree for the confirmations`);
      await rm(this.tree, { recursive: true, force: true });
      await rm(this.linked, { recursive: true, force: true });
      await copyTree(original.tree, this.tree);
      if (await exists(original.linked)) await copyTree(original.linked, this.linked);
      else await mkdir(this.linked);
      this.copied = true;
    }
    const view: OriginalBuild = { ...original, tree: this.tree, linked: this.linked, cached: false };
    if (this.pending.size === 0) return view;
    const files = [...this.pending].sort();
    const newest = await newestIn(this.tree);
    for (const file of files) {
      const from = join(this.opts.walkTree, file);
      const to = join(this.tree, file);
      if (await exists(from)) {
        await mkdir(dirname(to), { recursive: true });
        await copyFile(from, to);
      } else await rm(to, { force: true });
    }
    // A build without header dependencies (openldap's Makefiles list none) would not recompile
    // what includes an undone header: its includers are stamped too, found as the walk finds
    // the units a patch affects (affected.ts).
    const database = fromBuildLog(original.log, original.tree).map((u) => rebase(u, original.tree, this.tree));
    const includers = (await affectedUnits(this.tree, files, database)).units.map((a) => a.unit.source);
    await stampAfter(this.tree, [...new Set([...files, ...includers])], newest);
    const started = performance.now();
    try {
      await this.replay(original, `incremental rebuild before ${unit}`);
    } catch (error) {
      if (!(error instanceof BuildFailed)) throw error;
      this.broken = `the incremental rebuild of the series before ${unit} failed: ${failureLine(error.message)}`;
      return this.broken;
    }
    this.pending.clear();
    this.opts.log(`  rebuilt the binaries of the series before ${unit} (${files.length} file(s) undone since the last rebuild, ${includers.length} translation unit(s) affected; ${Math.round((performance.now() - started) / 100) / 10} s)`);
    return view;
  }

  /**
   * Re-runs the original build's recorded makes in the copy, at the original's path when a
   * bind mount is possible (absolute paths configure stored stay valid), through fresh shims.
   */
  private async replay(original: OriginalBuild, what: string): Promise<void> {
    const n = this.rebuilds++;
    const shims = join(this.opts.work, `shims-${n}`);
    const records = join(this.opts.work, `records-${n}`);
    await installShims(shims);
    await mkdir(records);
    const buildPath = (await bindMountAvailable()) ? original.tree : this.tree;
    const wrapper = { ...(await reproducibleEnv(this.tree)), ...wrapperEnv(shims, records, buildPath) };
    const at = buildPath === this.tree ? undefined : buildPath;
    // Makes that compiled and linked nothing in the original (documentation) have nothing to redo.
    for (const make of original.makes.filter((m: MakeInvocation) => m.built !== false)) {
      const display = `${make.tool} ${make.args.join(' ')}`.trim();
      const argv = ['env', '-C', join(buildPath, make.cwd), make.tool, ...make.args];
      await runBuild({ display, argv, env: replayEnv(make, join(original.dir, 'shims'), wrapper, shims) }, this.tree, {}, what, at, 'patched');
    }
    // The relinked binaries replace the captured ones of the states after this one.
    await readRecords(buildPath, records, this.linked);
    await rm(shims, { recursive: true, force: true });
    await rm(records, { recursive: true, force: true });
  }
}
