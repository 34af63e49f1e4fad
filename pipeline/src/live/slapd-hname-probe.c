/*
 * hname-probe: shows which version of libldap's ldap_pvt_get_hname runs inside slapd
 * (wfbuild live slapd). LD_PRELOADed into slapd, it wraps getnameinfo(3), which slapd's
 * listener calls through ldap_pvt_get_hname for every new connection (reverse-lookup on).
 *
 * Debian's getaddrinfo-is-threadsafe removes the LDAP_MUTEX_LOCK(&ldap_int_resolv_mutex) around
 * that call. So at the call the mutex is held by the caller in the unpatched version and free in
 * the patched one: a trylock tells (on a default mutex a trylock by its owner fails with EBUSY;
 * nothing else in slapd takes it while no outgoing connection is being made).
 *
 * Appends one line per call to $WF_HNAME_LOG: "held" (old code ran) or "free" (new code ran).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libldap's (exported through its ldap_* version script); weak: absent outside slapd. */
extern pthread_mutex_t ldap_int_resolv_mutex __attribute__((weak));

typedef int (*getnameinfo_fn)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int);

int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	static getnameinfo_fn real;
	if (!real)
		real = (getnameinfo_fn)dlsym(RTLD_NEXT, "getnameinfo");
	const char *state = "unknown";
	if (&ldap_int_resolv_mutex) {
		if (pthread_mutex_trylock(&ldap_int_resolv_mutex) == 0) {
			pthread_mutex_unlock(&ldap_int_resolv_mutex);
			state = "free";
		} else {
			state = "held";
		}
	}
	const char *path = getenv("WF_HNAME_LOG");
	if (path) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			char line[16];
			size_t n = strlen(state);
			memcpy(line, state, n);
			line[n++] = '\n';
			if (write(fd, line, n) < 0) {
			}
			close(fd);
		}
	}
	return real(sa, salen, host, hostlen, serv, servlen, flags);
}
