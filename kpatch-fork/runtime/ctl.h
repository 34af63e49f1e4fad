/* wfpatch-ctl's parts (the control-socket client, see wfpatch-ctl.c). */
#ifndef WF_CTL_H
#define WF_CTL_H

/* ctl-procs.c: prints the pid of every libwfpatch process mapping a file with this build-id. */
int wf_ctl_pids(const char *build_id);

#endif
