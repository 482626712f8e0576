/*
 * Unit tests of the log (src/log.c): both formats, written to a file put on
 * stderr as --log-file does. JSON lines must parse (jansson) with the
 * message's quotes, backslashes and control characters escaped and its bytes
 * that are not UTF-8 replaced; levels above the one set are dropped.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

/* Runs the logging of emit() with stderr on a fresh file; returns what was written (to free). */
static char *logged(void (*emit)(void))
{
    char path[] = "/tmp/cachette-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_int_equal(log_open_file(path), 0);
    emit();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *text = calloc(1, 8192);
    assert_non_null(text);
    assert_true(read(fd, text, 8191) >= 0);
    close(fd);
    unlink(path);
    return text;
}

static void emit_three(void)
{
    log_msg(LOG_LEVEL_WARN, "a \"quoted\" back\\slash, a tab\there, a newline\nand \x01, caf\xc3\xa9 and \xff%d", 7);
    log_msg(LOG_LEVEL_INFO, "second");
    log_msg(LOG_LEVEL_DEBUG, "dropped: above the level");
}

static void test_json_lines_parse(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_INFO);
    log_set_format(LOG_FORMAT_JSON);
    char *text = logged(emit_three);
    log_set_format(LOG_FORMAT_TEXT);
    char *second = strchr(text, '\n');
    assert_non_null(second);
    *second++ = '\0';
    assert_string_equal(strchr(second, '\n'), "\n"); /* two lines: debug was dropped */

    json_error_t err;
    json_t *line = json_loads(text, 0, &err);
    if (line == NULL)
        fail_msg("not JSON: %s (%s)", text, err.text);
    assert_string_equal(json_string_value(json_object_get(line, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(line, "message")),
                        "a \"quoted\" back\\slash, a tab\there, a newline\nand \x01, caf\xc3\xa9 and ?7");
    regex_t stamp;
    assert_int_equal(regcomp(&stamp, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", REG_EXTENDED), 0);
    assert_int_equal(regexec(&stamp, json_string_value(json_object_get(line, "time")), 0, NULL, 0), 0);
    regfree(&stamp);
    assert_int_equal(json_object_size(line), 3);
    json_decref(line);

    line = json_loads(second, 0, &err);
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "message")), "second");
    json_decref(line);
    free(text);
}

static void emit_one(void)
{
    log_msg(LOG_LEVEL_ERROR, "plain %s", "text");
}

static void test_text_lines(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_INFO);
    char *text = logged(emit_one);
    regex_t line;
    assert_int_equal(regcomp(&line, "^[0-9-]{10}T[0-9:]{8}Z error plain text\n$", REG_EXTENDED), 0);
    if (regexec(&line, text, 0, NULL, 0) != 0)
        fail_msg("unexpected text line: %s", text);
    regfree(&line);
    free(text);
}

static void test_parse_format(void **state)
{
    (void)state;
    enum log_format f;
    assert_int_equal(log_parse_format("json", &f), 0);
    assert_int_equal(f, LOG_FORMAT_JSON);
    assert_int_equal(log_parse_format("text", &f), 0);
    assert_int_equal(f, LOG_FORMAT_TEXT);
    assert_int_equal(log_parse_format("JSON", &f), -1);
    assert_int_equal(log_parse_format("", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_lines_parse),
        cmocka_unit_test(test_text_lines),
        cmocka_unit_test(test_parse_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
