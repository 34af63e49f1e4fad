/*
 * kvd — the demo server: a small multi-threaded key-value store on TCP, enabled for live
 * patching with libwfpatch. Each worker accepts a connection and serves its requests; the
 * top of its request loop is its quiescence point.
 *
 * Protocol, one line per request:  SET key value  →  STORED
 *                                  GET key        →  VALUE value | NOT_FOUND | CLIENT_ERROR ...
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wfpatch.h"
#include "store.h"

static int listen_fd;

static void reply(int fd, const char *text)
{
	size_t len = strlen(text);

	while (len > 0) {
		ssize_t n = write(fd, text, len);

		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

static void serve(int fd)
{
	char line[512], out[600];
	size_t have = 0;

	for (;;) {
		char *nl;
		ssize_t n;

		/* Quiescence point (local, or global in WF_GLOBAL=1 mode): no request in flight. */
		wf_global_quiescence("worker", 1);
		nl = memchr(line, '\n', have);
		if (!nl) {
			if (have == sizeof(line)) {
				reply(fd, "CLIENT_ERROR line too long\n");
				return;
			}
			n = read(fd, line + have, sizeof(line) - have);
			if (n <= 0)
				return;
			have += (size_t)n;
			continue;
		}
		*nl = '\0';
		handle_request(line, out, sizeof(out));
		reply(fd, out);
		have -= (size_t)(nl + 1 - line);
		memmove(line, nl + 1, have);
	}
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		int fd;

		wf_global_quiescence("worker", 1);
		fd = accept(listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("kvd: accept");
			return NULL;
		}
		serve(fd);
		close(fd);
	}
}

int main(int argc, char **argv)
{
	struct wf_configuration config = { 0 };
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int workers = argc > 1 ? atoi(argv[1]) : 4;
	int port = argc > 2 ? atoi(argv[2]) : 7070;
	int one = 1;

	if (workers < 1 || workers > 256 || port < 1 || port > 65535) {
		fprintf(stderr, "usage: kvd [WORKERS 1-256] [PORT]\n");
		return 2;
	}
	wf_init(config);
	addr.sin_port = htons((unsigned short)port);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd < 0 || setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(listen_fd, 128)) {
		perror("kvd: listen");
		return 1;
	}
	printf("kvd: %d workers on 127.0.0.1:%d, pid %d\n", workers, port, (int)getpid());
	fflush(stdout);
	for (int i = 0; i < workers; i++) {
		pthread_t thread;

		if (pthread_create(&thread, NULL, worker, NULL)) {
			perror("kvd: pthread_create");
			return 1;
		}
	}
	/* pause() returns after every signal handler, the patch trigger's included. */
	for (;;)
		pause();

}
