/**
 * The maintainer scripts of a hot-fix package (POSIX sh, text from the plan). They never fail
 * the package because of a process: a busy, gone or refusing process is reported per PID and
 * the outcome recorded in /run/wfpatch/<package>.outcome (queryable with `wfbuild status`), and
 * the script exits 0 — the fixes are installed, and libwfpatch loads them at the next start.
 *
 * postinst configure: every fix not yet applied, in order, to every process running libwfpatch
 * that maps a file with the target build-id (an upgrade applies only the new ones: the paths of
 * the old ones are already applied). prerm remove: this package's fixes rolled back, newest
 * first, as long as the newest applied patch of the process is one of them.
 */
import type { PackagePlan } from './plan.ts';

function header(plan: PackagePlan, what: string): string {
  return `#!/bin/sh
# ${what} of ${plan.name} ${plan.version}, written by wfbuild package.
set -e

BUILD_ID=${plan.buildId}
DIR=${plan.dir}
CTL=${plan.ctlPath}
OUTCOME=/run/wfpatch/${plan.name}.outcome
FIXES="${plan.fixes.map((f) => `${f.stem}.wfp`).join(' ')}"

say() { echo "${plan.name}: $*"; }
record() { echo "$*" >> "$OUTCOME" 2>/dev/null || true; }
# The reason of the last "rejected" line of wfpatch-ctl's output.
reason_of() { printf '%s\\n' "$1" | sed -n 's/.*"event":"rejected".*"reason":"\\([^"]*\\)".*/\\1/p' | tail -n 1; }
processes() { "$CTL" pids "$BUILD_ID" 2>/dev/null || true; }
`;
}

export function postinst(plan: PackagePlan): string {
  return `${header(plan, 'postinst')}
apply_all() {
  mkdir -p /run/wfpatch 2>/dev/null || true
  : > "$OUTCOME" 2>/dev/null || true
  record "# $(date -u +%Y-%m-%dT%H:%M:%SZ) postinst ${plan.version}"
  pids=$(processes)
  if [ -z "$pids" ]; then
    say "no running process has build-id $BUILD_ID (${plan.targetPath}): nothing patched now; the fixes load when it starts"
    record "none"
    return 0
  fi
  for pid in $pids; do
    if ! applied=$(timeout 30 "$CTL" "$pid" applied 2>&1); then
      say "pid $pid: cannot list its applied fixes ($applied): not patched now"
      record "$pid - unreachable"
      continue
    fi
    for f in $FIXES; do
      if printf '%s\\n' "$applied" | grep -qxF "$DIR/$f"; then
        say "pid $pid: $f already applied"
        record "$pid $f already-applied"
        continue
      fi
      if out=$(timeout 300 "$CTL" "$pid" apply "$DIR/$f" 2>&1); then
        say "pid $pid: $f applied"
        record "$pid $f applied"
      else
        why=$(reason_of "$out")
        [ -n "$why" ] || why=$(printf '%s\\n' "$out" | tail -n 1)
        say "pid $pid: $f NOT applied: $why (later fixes not tried for this process)"
        record "$pid $f rejected $why"
        break
      fi
    done
  done
}

case "$1" in
  configure) apply_all ;;
  abort-upgrade|abort-remove|abort-deconfigure) ;;
esac
exit 0
`;
}

export function prerm(plan: PackagePlan): string {
  return `${header(plan, 'prerm')}
ours() {
  for f in $FIXES; do [ "$1" = "$DIR/$f" ] && return 0; done
  return 1
}

rollback_all() {
  mkdir -p /run/wfpatch 2>/dev/null || true
  record "# $(date -u +%Y-%m-%dT%H:%M:%SZ) prerm remove"
  for pid in $(processes); do
    n=0
    while :; do
      if ! top=$(timeout 30 "$CTL" "$pid" applied 2>/dev/null | tail -n 1); then
        say "pid $pid: unreachable: not rolled back"
        record "$pid - unreachable"
        break
      fi
      ours "$top" || break
      if out=$(timeout 300 "$CTL" "$pid" rollback 2>&1); then
        say "pid $pid: $(basename "$top") rolled back"
        record "$pid $(basename "$top") rolled-back"
        n=$((n + 1))
      else
        why=$(reason_of "$out")
        say "pid $pid: rollback of $(basename "$top") refused: $why (it keeps running with the fix)"
        record "$pid $(basename "$top") rollback-refused $why"
        break
      fi
    done
    [ "$n" -gt 0 ] || say "pid $pid: none of this package's fixes is the newest applied patch: nothing rolled back"
  done
}

case "$1" in
  remove) rollback_all ;;
esac
exit 0
`;
}

export function postrm(plan: PackagePlan): string {
  return `#!/bin/sh
# postrm of ${plan.name} ${plan.version}, written by wfbuild package.
set -e
case "$1" in
  purge) rm -f /run/wfpatch/${plan.name}.outcome ;;
esac
exit 0
`;
}
