/* kvd's store: a fixed hash table of short keys behind one lock. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

#define KEY_MAX 32
#define VALUE_MAX 128
#define SLOTS 1024

struct slot {
	char key[KEY_MAX];
	char value[VALUE_MAX];
	int used;
};

static struct slot table[SLOTS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned int hash(const char *key)
{
	unsigned int h = 5381;

	while (*key)
		h = h * 33 + (unsigned char)*key++;
	return h % SLOTS;
}

/* Copies a key into its fixed-size slot field. */
static int copy_key(char *dst, const char *key)
{
	strncpy(dst, key, KEY_MAX - 1);
	dst[KEY_MAX - 1] = '\0';
	return 0;
}

static void set(const char *key, const char *value, char *out, size_t outlen)
{
	char name[KEY_MAX];
	struct slot *s;

	if (copy_key(name, key) != 0) {
		snprintf(out, outlen, "CLIENT_ERROR key too long\n");
		return;
	}
	s = &table[hash(name)];
	pthread_mutex_lock(&table_lock);
	memcpy(s->key, name, sizeof(name));
	snprintf(s->value, sizeof(s->value), "%s", value);
	s->used = 1;
	pthread_mutex_unlock(&table_lock);
	snprintf(out, outlen, "STORED\n");
}

static void get(const char *key, char *out, size_t outlen)
{
	char name[KEY_MAX];
	struct slot *s;

	if (copy_key(name, key) != 0) {
		snprintf(out, outlen, "CLIENT_ERROR key too long\n");
		return;
	}
	s = &table[hash(name)];
	pthread_mutex_lock(&table_lock);
	if (s->used && strcmp(s->key, name) == 0)
		snprintf(out, outlen, "VALUE %s\n", s->value);
	else
		snprintf(out, outlen, "NOT_FOUND\n");
	pthread_mutex_unlock(&table_lock);
}

void handle_request(char *line, char *out, size_t outlen)
{
	char *rest;
	char *cmd = strtok_r(line, " ", &rest);
	char *key = strtok_r(NULL, " ", &rest);
	char *value = strtok_r(NULL, "", &rest);

	if (cmd && key && strcmp(cmd, "GET") == 0)
		get(key, out, outlen);
	else if (cmd && key && value && strcmp(cmd, "SET") == 0)
		set(key, value, out, outlen);
	else
		snprintf(out, outlen, "ERROR\n");
}
