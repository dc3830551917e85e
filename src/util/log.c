/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "util/log.h"

static int max_level = LOG_INFO;
static char **capture;

static const char * const log_level_table[] = {
        [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
};
DEFINE_STRING_TABLE_LOOKUP(log_level, int);

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_capture(char **buffer) {
        capture = buffer;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        /* %m in the format refers to the error passed in, not to whatever errno happens to hold. */
        errno = abs(error);
        va_start(ap, format);
        vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        if (capture) {
                char *n = NULL;
                if (asprintf(&n, "%s<%i>%s\n", *capture ?: "", level, buf) >= 0) {
                        free(*capture);
                        *capture = n;
                }
        } else if (max_level >= LOG_DEBUG)
                fprintf(stderr, "<%i>%s (%s:%i %s)\n", level, buf, file, line, func);
        else
                fprintf(stderr, "<%i>%s\n", level, buf);

        errno = saved;
        return -abs(error);
}
