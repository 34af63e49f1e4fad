/*
 * kvload — load for the demo: THREADS clients send requests to kvd for SECONDS; at
 * TRIGGER_MS it sends kvd the patch signal (SIGRTMIN+0). Each client alternates
 * "SET <long key A> secret" and "GET <long key B>", where A and B share their first 31
 * characters: the unpatched kvd truncates keys and answers B with A's value (the bug); the
 * patched one refuses over-long keys. Prints one JSON object with the counts and timings.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, seconds;
static atomic_long requests, errors, connect_errors, io_errors, bad_answers, leaked, refused, leaked_after_trigger;
static atomic_long last_leak_us = -1, first_refusal_us = -1;
static atomic_long trigger_us = -1;
static double start;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long since_start_us(void)
{
	return (long)((now() - start) * 1e6);
}

static int roundtrip(int fd, const char *req, char *resp, size_t len)
{
	size_t have = 0;

	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		return -1;
	while (have < len - 1) {
		ssize_t n = read(fd, resp + have, len - 1 - have);

		if (n <= 0)
			return -1;
		have += (size_t)n;
		if (resp[have - 1] == '\n')
			break;
	}
	resp[have] = '\0';
	return 0;
}

static void *client(void *arg)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const char *set = "SET session-token-of-user-000000000-alice secret\n";
	const char *get = "GET session-token-of-user-000000000-mallory\n";
	char resp[256];

	(void)arg;
	while (now() - start < seconds) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
			atomic_fetch_add(&errors, 1);
			atomic_fetch_add(&connect_errors, 1);
			if (fd >= 0)
				close(fd);
			usleep(1000);
			continue;
		}
		for (int i = 0; i < 20; i++) {
			long t;

			if (roundtrip(fd, set, resp, sizeof(resp)) || roundtrip(fd, get, resp, sizeof(resp))) {
				atomic_fetch_add(&errors, 1);
				atomic_fetch_add(&io_errors, 1);
				fprintf(stderr, "kvload: request failed: %s\n", strerror(errno));
				break;
			}
			atomic_fetch_add(&requests, 2);
			t = since_start_us();
			if (strncmp(resp, "VALUE", 5) == 0) {
				atomic_fetch_add(&leaked, 1);
				atomic_store(&last_leak_us, t);
				if (atomic_load(&trigger_us) >= 0)
					atomic_fetch_add(&leaked_after_trigger, 1);
			} else if (strncmp(resp, "CLIENT_ERROR", 12) == 0) {
				long expected = -1;

				atomic_fetch_add(&refused, 1);
				atomic_compare_exchange_strong(&first_refusal_us, &expected, t);
			} else if (strncmp(resp, "NOT_FOUND", 9) != 0) {
				atomic_fetch_add(&errors, 1);
				atomic_fetch_add(&bad_answers, 1);
				fprintf(stderr, "kvload: unexpected answer: %.80s\n", resp);
			}
		}
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads, trigger_ms;
	pid_t target;
	pthread_t tid[64];

	if (argc != 6) {
		fprintf(stderr, "usage: kvload PORT THREADS SECONDS KVD_PID TRIGGER_MS\n");
		return 2;
	}
	port = atoi(argv[1]);
	threads = atoi(argv[2]);
	seconds = atoi(argv[3]);
	target = (pid_t)atoi(argv[4]);
	trigger_ms = atoi(argv[5]);
	if (threads < 1 || threads > 64 || seconds < 1 || target < 1 || trigger_ms < 0) {
		fprintf(stderr, "kvload: bad arguments\n");
		return 2;
	}
	start = now();
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, client, NULL);
	usleep((useconds_t)trigger_ms * 1000);
	atomic_store(&trigger_us, since_start_us());
	if (kill(target, SIGRTMIN)) {
		perror("kvload: kill");
		return 1;
	}
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	printf("{\"requests\":%ld,\"errors\":%ld,\"leaked\":%ld,\"refused\":%ld,"
	       "\"leakedAfterTrigger\":%ld,\"triggerUs\":%ld,\"lastLeakUs\":%ld,\"firstRefusalUs\":%ld,"
	       "\"seconds\":%d,\"threads\":%d,\"connectErrors\":%ld,\"ioErrors\":%ld,\"badAnswers\":%ld}\n",
	       atomic_load(&requests), atomic_load(&errors), atomic_load(&leaked), atomic_load(&refused),
	       atomic_load(&leaked_after_trigger), atomic_load(&trigger_us), atomic_load(&last_leak_us),
	       atomic_load(&first_refusal_us), seconds, threads, atomic_load(&connect_errors),
	       atomic_load(&io_errors), atomic_load(&bad_answers));
	return 0;
}
