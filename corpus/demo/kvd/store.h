#ifndef KVD_STORE_H
#define KVD_STORE_H
#include <stddef.h>

/* Handles one request line; writes the reply (newline-terminated) into out. */
void handle_request(char *line, char *out, size_t outlen);

#endif
