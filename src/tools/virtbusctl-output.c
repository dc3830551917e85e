/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl's output: a small JSON emitter, aligned tables, and properties read from the bus. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tools/virtbusctl.h"

/* JSON -------------------------------------------------------------------------------------- */

void json_begin(Json *j, FILE *f) {
        *j = (Json) { .f = f };
        j->first[0] = true;
}

void json_end(Json *j) {
        fputc('\n', j->f);
}

/* Before a value: a comma unless it is the first in its container, or the value of a key. */
static void json_sep(Json *j) {
        if (j->after_key) {
                j->after_key = false;
                return;
        }
        if (!j->first[j->depth])
                fputc(',', j->f);
        j->first[j->depth] = false;
}

static void json_open(Json *j, char c) {
        json_sep(j);
        fputc(c, j->f);
        if (j->depth + 1 < ELEMENTSOF(j->first))
                j->depth++;
        j->first[j->depth] = true;
}

static void json_close(Json *j, char c) {
        if (j->depth > 0)
                j->depth--;
        fputc(c, j->f);
}

void json_object_open(Json *j) {
        json_open(j, '{');
}

void json_object_close(Json *j) {
        json_close(j, '}');
}

void json_array_open(Json *j) {
        json_open(j, '[');
}

void json_array_close(Json *j) {
        json_close(j, ']');
}

static void json_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) strempty(s); *p; p++) {
                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                case '\b':
                        fputs("\\b", f);
                        break;
                case '\f':
                        fputs("\\f", f);
                        break;
                default:
                        /* Other control characters (and DEL) escaped; UTF-8 goes through as it is (D-Bus
                         * strings are valid UTF-8). */
                        if (*p < 0x20 || *p == 0x7f)
                                fprintf(f, "\\u%04x", *p);
                        else
                                fputc(*p, f);
                }
        }
        fputc('"', f);
}

void json_key(Json *j, const char *key) {
        json_sep(j);
        json_quoted(j->f, key);
        fputc(':', j->f);
        j->after_key = true;
}

void json_string(Json *j, const char *s) {
        json_sep(j);
        json_quoted(j->f, s);
}

void json_uint(Json *j, uint64_t v) {
        json_sep(j);
        fprintf(j->f, "%" PRIu64, v);
}

void json_int(Json *j, int64_t v) {
        json_sep(j);
        fprintf(j->f, "%" PRIi64, v);
}

void json_double(Json *j, double v) {
        json_sep(j);
        if (isfinite(v))
                fprintf(j->f, "%.17g", v);
        else
                fputs("null", j->f);
}

void json_bool(Json *j, bool v) {
        json_sep(j);
        fputs(v ? "true" : "false", j->f);
}

void json_null(Json *j) {
        json_sep(j);
        fputs("null", j->f);
}

/* Tables ------------------------------------------------------------------------------------ */

Table *table_new(const char *first, ...) {
        Table *t = new0(Table, 1);
        va_list ap;

        if (!t)
                return NULL;
        va_start(ap, first);
        for (const char *h = first; h; h = va_arg(ap, const char *)) {
                if (!GREEDY_REALLOC(t->cells, t->allocated, t->n_cells + 1) || !(t->cells[t->n_cells] = strdup(h))) {
                        va_end(ap);
                        return table_free(t);
                }
                t->n_cells++;
                t->n_columns++;
        }
        va_end(ap);
        return t;
}

int table_add_row(Table *t, ...) {
        va_list ap;
        int r = 0;

        va_start(ap, t);
        for (size_t i = 0; i < t->n_columns; i++) {
                const char *s = va_arg(ap, const char *);

                if (!GREEDY_REALLOC(t->cells, t->allocated, t->n_cells + 1) ||
                    !(t->cells[t->n_cells] = strdup(isempty(s) ? "-" : s))) {
                        r = -ENOMEM;
                        break;
                }
                t->n_cells++;
        }
        va_end(ap);
        return r;
}

size_t table_rows(const Table *t) {
        return t->n_columns ? t->n_cells / t->n_columns - 1 : 0;
}

void table_print(Table *t, FILE *f) {
        size_t width[16] = {};
        size_t n = CTL_MIN(t->n_columns, ELEMENTSOF(width));

        for (size_t c = 0; c < t->n_cells; c++)
                if (c % t->n_columns < n)
                        width[c % t->n_columns] = CTL_MAX(width[c % t->n_columns], strlen(t->cells[c]));
        for (size_t c = arg.legend ? 0 : t->n_columns; c < t->n_cells; c++) {
                size_t col = c % t->n_columns;
                bool last = col + 1 == t->n_columns, header = c < t->n_columns;

                if (header && arg.color)
                        fputs("\033[1m", f);
                if (last)
                        fputs(t->cells[c], f);
                else
                        fprintf(f, "%-*s ", (int) (col < n ? width[col] : 0), t->cells[c]);
                if (header && arg.color && last)
                        fputs("\033[0m", f);
                if (last)
                        fputc('\n', f);
        }
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

/* Properties -------------------------------------------------------------------------------- */

void format_bytes(uint64_t bytes, char *buf, size_t size) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double) bytes;
        size_t u = 0;

        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%" PRIu64 " B", bytes);
        else
                snprintf(buf, size, "%.1f %s", v, units[u]);
}

static int prop_read_value(sd_bus_message *m, Prop *p) {
        const char *contents = NULL, *s;
        char type = 0;
        int r, b;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;
        p->type = contents[0];
        switch (contents[0]) {
        case 's':
        case 'o':
                r = sd_bus_message_read_basic(m, contents[0], &s);
                if (r >= 0)
                        p->text = strdup(s);
                break;
        case 'b':
                r = sd_bus_message_read_basic(m, 'b', &b);
                p->u = b;
                if (r >= 0)
                        p->text = strdup(b ? "yes" : "no");
                break;
        case 'u': {
                uint32_t v;
                r = sd_bus_message_read_basic(m, 'u', &v);
                p->u = v;
                if (r >= 0 && asprintf(&p->text, "%" PRIu64, p->u) < 0)
                        p->text = NULL;
                break;
        }
        case 't':
                r = sd_bus_message_read_basic(m, 't', &p->u);
                if (r >= 0 && asprintf(&p->text, "%" PRIu64, p->u) < 0)
                        p->text = NULL;
                break;
        case 'i': {
                int32_t v;
                r = sd_bus_message_read_basic(m, 'i', &v);
                p->i = v;
                if (r >= 0 && asprintf(&p->text, "%" PRIi64, p->i) < 0)
                        p->text = NULL;
                break;
        }
        case 'x':
                r = sd_bus_message_read_basic(m, 'x', &p->i);
                if (r >= 0 && asprintf(&p->text, "%" PRIi64, p->i) < 0)
                        p->text = NULL;
                break;
        case 'd':
                r = sd_bus_message_read_basic(m, 'd', &p->d);
                if (r >= 0 && asprintf(&p->text, "%g", p->d) < 0)
                        p->text = NULL;
                break;
        default:
                if (streq(contents, "as")) {
                        p->type = 'a';
                        r = sd_bus_message_read_strv(m, &p->strv);
                        if (r >= 0) {
                                size_t len = 1;
                                for (char **i = p->strv; *i; i++)
                                        len += strlen(*i) + 1;
                                p->text = calloc(1, len);
                                for (char **i = p->strv; p->text && *i; i++) {
                                        if (i != p->strv)
                                                strcat(p->text, ",");
                                        strcat(p->text, *i);
                                }
                        }
                } else {
                        p->type = '?';
                        r = sd_bus_message_skip(m, contents);
                        if (r >= 0)
                                p->text = strdup(contents);
                }
        }
        if (r < 0)
                return r;
        if (!p->text)
                return -ENOMEM;
        return sd_bus_message_exit_container(m);
}

int props_read(sd_bus_message *m, Props *ret) {
        Props p = {};
        size_t allocated = 0;
        const char *name;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                if (!GREEDY_REALLOC(p.p, allocated, p.n + 1)) {
                        props_done(&p);
                        return -ENOMEM;
                }
                p.p[p.n] = (Prop) {};
                r = sd_bus_message_read_basic(m, 's', &name);
                if (r >= 0 && !(p.p[p.n].name = strdup(name)))
                        r = -ENOMEM;
                p.n++;
                if (r >= 0)
                        r = prop_read_value(m, &p.p[p.n - 1]);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0) {
                        props_done(&p);
                        return r;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0) {
                props_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}

int props_get_all(sd_bus *bus, const char *path, const char *interface, Props *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = ctl_call(bus, path, "org.freedesktop.DBus.Properties", "GetAll", &reply, "s", interface);
        if (r < 0)
                return r;
        r = props_read(reply, ret);
        if (r < 0) {
                fprintf(stderr, "Failed to read the properties of %s: %s\n", path, strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        return 0;
}

void props_done(Props *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->p[i].name);
                free(p->p[i].text);
                if (p->p[i].strv)
                        ctl_strv_free(p->p[i].strv);
        }
        free(p->p);
        *p = (Props) {};
}

static const Prop *props_find(const Props *p, const char *name) {
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->p[i].name, name))
                        return &p->p[i];
        return NULL;
}

const char *props_text(const Props *p, const char *name) {
        const Prop *x = props_find(p, name);
        return x ? x->text : "-";
}

bool props_bool(const Props *p, const char *name) {
        const Prop *x = props_find(p, name);
        return x && x->type == 'b' && x->u;
}

void props_json(const Props *p, Json *j) {
        for (size_t i = 0; i < p->n; i++) {
                const Prop *x = &p->p[i];

                json_key(j, x->name);
                switch (x->type) {
                case 'b':
                        json_bool(j, x->u);
                        break;
                case 'u':
                case 't':
                        json_uint(j, x->u);
                        break;
                case 'i':
                case 'x':
                        json_int(j, x->i);
                        break;
                case 'd':
                        json_double(j, x->d);
                        break;
                case 'a':
                        json_array_open(j);
                        for (char **s = x->strv; s && *s; s++)
                                json_string(j, *s);
                        json_array_close(j);
                        break;
                case '?':
                        json_null(j);
                        break;
                default:
                        json_string(j, x->text);
                }
        }
}
