/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_model.h -- the cluster-manager page's model, private to the page.
 *
 * sc_status.c gathers what the engine publishes, the store's counters and
 * the configuration into one model (sections of named values, tables of
 * rows) and writes it as ?auto, ?json and Prometheus; sc_page.c writes the
 * same model as HTML.  Nothing here is seen outside the page's two files.
 */
#ifndef SC_MODEL_H
#define SC_MODEL_H

#include "sc_private.h"
#include "sc_shm.h"

/* The largest ping (POST ping=ROUTE&size=N): enough to time a large session
 * message, small enough that a few requests cannot make the engine hold much
 * (a ping's bytes pass through the engine's buffers on their way out). */
#define SC_PING_MAX (1024 * 1024)

typedef enum { V_NUM, V_STR } vkind;

typedef struct {
    const char *key;                  /* CamelCase (?auto) */
    const char *text;                 /* the value as text */
    apr_uint64_t num;
    vkind kind;
    int counter;                      /* Prometheus: counter, else gauge */
    const char *help;
} field;

typedef struct {
    const char *name;                 /* JSON member, Prometheus infix */
    const char *title;                /* HTML heading */
    apr_array_header_t *fields;       /* field */
} section;

typedef struct {
    const char *name;                 /* JSON member, Prometheus infix */
    const char *title;                /* HTML heading */
    const char *auto_tag;             /* ?auto line tag ("Member") */
    const char *label;                /* the key that names a row (Prometheus label) */
    apr_array_header_t *rows;         /* apr_array_header_t * of field */
} table;

/* A consistent copy of what the engine published: its header and the
 * records in use, in slot order (the members table has a row per record,
 * in this order). */
typedef struct {
    int have;
    sc_shm_t hdr;
    sc_shm_member m[SC_MAX_MEMBERS];
    int n;
} sc_view;

typedef struct {
    request_rec *r;
    apr_pool_t *p;
    apr_array_header_t *sections;     /* section * */
    apr_array_header_t *tables;       /* table * */
    apr_array_header_t *lines;        /* ?auto lines kept as they were (Route, ...) */
    apr_array_header_t *config;       /* the effective configuration, text lines */
    const char *route;                /* this member's, for Prometheus labels */
    const sc_view *view;              /* what the model was gathered from (the HTML
                                       * reads times no format prints, e.g. since when
                                       * a member is in its state) */
} model;

#endif /* SC_MODEL_H */
