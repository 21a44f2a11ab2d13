/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * unit.h -- the C unit tests' assertions (t/unit/test_*.c, run by
 * `make check-unit`, part of `make check`).
 *
 * Each assertion prints a TAP line ("ok 3 - name" or "not ok 3 - name" with
 * what was found and expected), and unit_done() prints the plan and the
 * summary line "test_x: N passed, N failed"; its value is the program's exit
 * status: non-zero when an assertion failed.
 *
 *   ok(cond, name...)             cond is true
 *   is(got, want, name...)        two integers are equal
 *   is_str(got, want, name...)    two strings are equal (NULL equals NULL only)
 *   like(got, part, name...)      string got holds part
 *
 * The name is a printf format and its arguments.  The tests of the engine's
 * layers run the module's own code in memory, with no socket: the one thing
 * they replace is the transport (fixture.c says how).
 */
#ifndef SC_UNIT_H
#define SC_UNIT_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int unit_run, unit_failed;

#define UNIT_USED __attribute__((unused))

static UNIT_USED void unit_name(const char *fmt, va_list ap)
{
    vprintf(fmt, ap);
}

static UNIT_USED __attribute__((format(printf, 5, 6)))
int unit_ok(int pass, const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    unit_run++;
    if (!pass) {
        unit_failed++;
    }
    printf("%sok %d - ", pass ? "" : "not ", unit_run);
    va_start(ap, fmt);
    unit_name(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        printf("#   failed at %s:%d: %s\n", file, line, expr);
    }
    fflush(stdout);
    return pass;
}

static UNIT_USED __attribute__((format(printf, 6, 7)))
int unit_is(long long got, long long want, const char *file, int line, const char *expr,
            const char *fmt, ...)
{
    va_list ap;
    int pass = got == want;
    unit_run++;
    if (!pass) {
        unit_failed++;
    }
    printf("%sok %d - ", pass ? "" : "not ", unit_run);
    va_start(ap, fmt);
    unit_name(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        printf("#   failed at %s:%d: %s\n#          got: %lld\n#     expected: %lld\n",
               file, line, expr, got, want);
    }
    fflush(stdout);
    return pass;
}

/* how: 0 equal, 1 got holds want */
static UNIT_USED __attribute__((format(printf, 7, 8)))
int unit_str(int how, const char *got, const char *want, const char *file, int line,
             const char *expr, const char *fmt, ...)
{
    va_list ap;
    int pass;
    if (how == 0) {
        pass = (!got && !want) || (got && want && !strcmp(got, want));
    }
    else {
        pass = got && want && strstr(got, want) != NULL;
    }
    unit_run++;
    if (!pass) {
        unit_failed++;
    }
    printf("%sok %d - ", pass ? "" : "not ", unit_run);
    va_start(ap, fmt);
    unit_name(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        printf("#   failed at %s:%d: %s\n#          got: %s%s%s\n#     %s: \"%s\"\n",
               file, line, expr, got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
               how == 0 ? "expected" : "to hold", want ? want : "NULL");
    }
    fflush(stdout);
    return pass;
}

#define ok(cond, ...) unit_ok(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)
#define is(got, want, ...) \
    unit_is((long long)(got), (long long)(want), __FILE__, __LINE__, #got " == " #want, \
            __VA_ARGS__)
#define is_str(got, want, ...) \
    unit_str(0, (got), (want), __FILE__, __LINE__, #got " eq " #want, __VA_ARGS__)
#define like(got, part, ...) \
    unit_str(1, (got), (part), __FILE__, __LINE__, #got " =~ " #part, __VA_ARGS__)

/* A comment line in the output (a heading for the assertions that follow). */
#define note(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

/* The plan and the summary; the program's exit status. */
static UNIT_USED int unit_done(const char *program)
{
    printf("1..%d\n", unit_run);
    printf("%s: %d passed, %d failed\n", program, unit_run - unit_failed, unit_failed);
    fflush(stdout);
    return unit_failed ? 1 : 0;
}

#endif /* SC_UNIT_H */
