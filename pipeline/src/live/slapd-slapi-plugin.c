/*
 * slapi-plugin: a SLAPI plugin whose init writes one line to SLAPI's error log (wfbuild live
 * slapd). Configuring it on a database (olcPlugin through cn=config) makes slapd instantiate its
 * SLAPI overlay, which runs libslapi's slapi_over_config once per process: the function Debian's
 * slapi-errorlog-file changes. That function picks the error log's default path: /var/errors
 * before the patch, /var/log/slapi-errors after it (LDAP_RUNDIR is /var in Debian's build).
 * The plugin's line lands in the file the running version chose; the guest looks which exists.
 */
#define SLAPI_LOG_FATAL 0

/* libslapi's (slapi-plugin.h), resolved in slapd, which has libslapi loaded. */
extern int slapi_log_error(int severity, char *subsystem, char *fmt, ...);

int wf_slapi_init(void *pb);

/* Called with the plugin's parameter block when it is configured; 0 accepts it. */
int wf_slapi_init(void *pb)
{
	(void)pb;
	slapi_log_error(SLAPI_LOG_FATAL, "wf-slapi-plugin", "configured\n");
	return 0;
}
