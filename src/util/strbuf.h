/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

/* A growable NUL-terminated string. Allocation failure is sticky: the buffer remembers it and
 * strbuf_steal() then returns NULL, so that callers check once at the end. */
typedef struct StrBuf {
        char *buf;
        size_t len;
        size_t allocated;
        bool oom;
} StrBuf;

#define STRBUF_NULL ((StrBuf) {})

void strbuf_append(StrBuf *b, const char *s);
void strbuf_append_n(StrBuf *b, const char *s, size_t n);
void strbuf_appendf(StrBuf *b, const char *format, ...) _printf_(2, 3);
void strbuf_indent(StrBuf *b, unsigned n);
/* Returns the string (owned by the caller) or NULL on allocation failure; resets the buffer. */
char *strbuf_steal(StrBuf *b);
void strbuf_done(StrBuf *b);
