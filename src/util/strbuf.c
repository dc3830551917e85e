/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "util/strbuf.h"

static bool strbuf_reserve(StrBuf *b, size_t extra) {
        if (b->oom)
                return false;
        if (!GREEDY_REALLOC(b->buf, b->allocated, b->len + extra + 1)) {
                b->oom = true;
                return false;
        }
        return true;
}

void strbuf_append_n(StrBuf *b, const char *s, size_t n) {
        if (!strbuf_reserve(b, n))
                return;
        memcpy(b->buf + b->len, s, n);
        b->len += n;
        b->buf[b->len] = 0;
}

void strbuf_append(StrBuf *b, const char *s) {
        strbuf_append_n(b, s, strlen(s));
}

void strbuf_appendf(StrBuf *b, const char *format, ...) {
        va_list ap;
        int n;

        va_start(ap, format);
        n = vsnprintf(NULL, 0, format, ap);
        va_end(ap);
        if (n < 0 || !strbuf_reserve(b, (size_t) n))
                return;
        va_start(ap, format);
        vsnprintf(b->buf + b->len, (size_t) n + 1, format, ap);
        va_end(ap);
        b->len += (size_t) n;
}

void strbuf_indent(StrBuf *b, unsigned n) {
        if (!strbuf_reserve(b, n))
                return;
        memset(b->buf + b->len, ' ', n);
        b->len += n;
        b->buf[b->len] = 0;
}

char *strbuf_steal(StrBuf *b) {
        char *s;

        if (b->oom) {
                strbuf_done(b);
                return NULL;
        }
        s = b->buf ?: strdup("");
        *b = STRBUF_NULL;
        return s;
}

void strbuf_done(StrBuf *b) {
        free(b->buf);
        *b = STRBUF_NULL;
}
