/*
 * The response log that keeps docs/openapi.yaml true. With
 * CACHETTE_TEST_RESPONSE_LOG=FILE in the environment, every HTTP response a
 * suite receives is appended to FILE as one JSON line (the request's method,
 * path and Accept, the status, the response's headers, and its body when it
 * is JSON); tests/openapi/check_responses.py validates each line against the
 * description. Without the variable, nothing is recorded.
 */
#ifndef CACHETTE_TESTS_SUPPORT_CONTRACT_H
#define CACHETTE_TESTS_SUPPORT_CONTRACT_H

#include <stddef.h>

/*
 * Records one response. method and path are NULL when the suite parsed the
 * response out of a raw byte stream and does not know which request it
 * answers (the check then asks only that some operation documents it);
 * accept is the request's Accept header, or NULL. head holds the status
 * line(s) and header lines as received.
 */
void contract_record(const char *method, const char *path, const char *accept, long status, const char *head,
                     size_t head_len, const char *body, size_t body_len);

#endif
