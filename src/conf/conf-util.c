/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/random.h>

#include "conf/conf-util.h"
#include "util/strbuf.h"

static bool strcaseeq(const char *a, const char *b) {
        return strcasecmp(a, b) == 0;
}

int conf_error(VbError *e, const ConfNode *n, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (!n)
                return vb_error_set(e, VB_ERROR_INVALID_XML, "%s", msg);
        return vb_error_set(e, VB_ERROR_INVALID_XML, "line %u: element '%s': %s", n->line, n->name, msg);
}

int conf_lookup_enum(const ConfNode *n, const char *what, const char *value, ConfEnumToString to_string,
                     size_t n_table, int *ret, VbError *e) {
        _cleanup_free_ char *expected = NULL;
        StrBuf b = STRBUF_NULL;

        for (size_t i = 0; value && i < n_table; i++)
                if (to_string((int) i) && streq(to_string((int) i), value)) {
                        *ret = (int) i;
                        return 1;
                }
        for (size_t i = 0, k = 0; i < n_table; i++)
                if (to_string((int) i))
                        strbuf_appendf(&b, "%s%s", k++ ? ", " : "", to_string((int) i));
        expected = strbuf_steal(&b);
        /* The schema takes "restart\n" for "restart" (a token); we don't: say what is wrong with it. */
        if (value && *value && (isspace((unsigned char) value[0]) || isspace((unsigned char) value[strlen(value) - 1]))) {
                const char *start = value + strspn(value, " \t\r\n");
                size_t len = strlen(start);

                while (len > 0 && isspace((unsigned char) start[len - 1]))
                        len--;
                return conf_error(e, n, "%s '%.*s' has white space around it; write it without (expected %s)", what,
                                  (int) len, start, strempty(expected));
        }
        return conf_error(e, n, "%s has invalid value '%s' (expected %s)", what, strempty(value), strempty(expected));
}

int conf_take_enum(ConfNode *n, const char *attr, bool required, ConfEnumToString to_string, size_t n_table,
                   int *ret, VbError *e) {
        _cleanup_free_ char *v = conf_node_take_attr(n, attr), *what = NULL;

        if (!v)
                return required ? conf_error(e, n, "attribute '%s' is missing", attr) : 0;
        if (asprintf(&what, "attribute '%s'", attr) < 0)
                return -ENOMEM;
        return conf_lookup_enum(n, what, v, to_string, n_table, ret, e);
}

static const char *base_expected(int base) {
        return base == 10 ? "an unsigned decimal number"
               : base == 16 ? "an unsigned hexadecimal number"
                            : "an unsigned number (decimal, 0x hexadecimal or 0 octal)";
}

int conf_parse_uint_base(const ConfNode *n, const char *what, const char *s, int base, uint64_t max, uint64_t *ret,
                         VbError *e) {
        unsigned long long v;
        char *end;

        assert(base == CONF_BASE_C || base == 10 || base == 16);
        errno = 0;
        if (isempty(s) || !(base == 16 ? isxdigit((unsigned char) s[0]) : isdigit((unsigned char) s[0])))
                return conf_error(e, n, "%s has invalid value '%s' (expected %s)", what, strempty(s), base_expected(base));
        v = strtoull(s, &end, base);
        if (errno != 0 || *end)
                return conf_error(e, n, "%s has invalid value '%s' (expected %s)", what, s, base_expected(base));
        if (v > max)
                return conf_error(e, n, "%s has invalid value '%s' (expected at most %llu)", what, s,
                                  (unsigned long long) max);
        *ret = v;
        return 0;
}

int conf_parse_uint(const ConfNode *n, const char *what, const char *s, uint64_t max, uint64_t *ret, VbError *e) {
        return conf_parse_uint_base(n, what, s, 10, max, ret, e);
}

int conf_take_uint_base(ConfNode *n, const char *attr, int base, uint64_t max, uint64_t *ret, VbError *e) {
        _cleanup_free_ char *v = conf_node_take_attr(n, attr);
        _cleanup_free_ char *what = NULL;
        int r;

        if (!v)
                return 0;
        if (asprintf(&what, "attribute '%s'", attr) < 0)
                return -ENOMEM;
        r = conf_parse_uint_base(n, what, v, base, max, ret, e);
        return r < 0 ? r : 1;
}

int conf_take_uint(ConfNode *n, const char *attr, uint64_t max, uint64_t *ret, VbError *e) {
        return conf_take_uint_base(n, attr, 10, max, ret, e);
}

int conf_take_uint32_base(ConfNode *n, const char *attr, int base, uint32_t max, uint32_t *ret, VbError *e) {
        uint64_t v;
        int r = conf_take_uint_base(n, attr, base, max, &v, e);

        if (r > 0)
                *ret = (uint32_t) v;
        return r;
}

int conf_take_uint32(ConfNode *n, const char *attr, uint32_t max, uint32_t *ret, VbError *e) {
        return conf_take_uint32_base(n, attr, 10, max, ret, e);
}

int conf_take_yesno(ConfNode *n, const char *attr, int *ret, VbError *e) {
        _cleanup_free_ char *v = conf_node_take_attr(n, attr);

        if (!v)
                return 0;
        if (streq(v, "yes") || streq(v, "on")) {
                *ret = 1;
                return 1;
        }
        if (streq(v, "no") || streq(v, "off")) {
                *ret = 0;
                return 1;
        }
        return conf_error(e, n, "attribute '%s' has invalid value '%s' (expected yes, no)", attr, v);
}

int conf_memory_to_kib(const char *value, const char *unit, uint64_t *ret_kib) {
        unsigned __int128 bytes;
        unsigned long long v;
        unsigned base = 1024, power;
        const char *p;
        char *end;

        if (isempty(value) || !isdigit((unsigned char) value[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(value, &end, 10);
        if (errno != 0 || *end)
                return -EINVAL;
        if (isempty(unit))
                unit = "KiB";
        if (strcaseeq(unit, "b") || strcaseeq(unit, "bytes"))
                power = 0;
        else {
                p = strchr("kmgtpe", tolower((unsigned char) unit[0]));
                if (!p)
                        return -EINVAL;
                power = (unsigned) (p - "kmgtpe") + 1;
                if (strcaseeq(unit + 1, "b"))
                        base = 1000;
                else if (unit[1] && !strcaseeq(unit + 1, "ib"))
                        return -EINVAL;
        }
        bytes = v;
        for (unsigned i = 0; i < power; i++) {
                bytes *= base;
                if (bytes > (unsigned __int128) UINT64_MAX * 1024)
                        return -ERANGE;
        }
        *ret_kib = (uint64_t) ((bytes + 1023) / 1024);
        return 0;
}

int conf_take_memory(ConfNode *n, uint64_t *ret_kib, VbError *e) {
        _cleanup_free_ char *text = conf_node_take_text(n), *unit = conf_node_take_attr(n, "unit");
        int r;

        r = conf_memory_to_kib(text, unit, ret_kib);
        if (r == -ERANGE)
                return conf_error(e, n, "value '%s %s' is too large", strempty(text), strempty(unit));
        if (r < 0)
                return conf_error(e, n, "invalid size '%s' with unit '%s' (expected a number and b, KB, KiB, MB, MiB, GB, GiB, TB, TiB...)",
                                  strempty(text), unit ?: "KiB");
        return 0;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower(c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int conf_uuid_parse(const char *s, uint8_t ret[16]) {
        uint8_t u[16];
        size_t k = 0;

        /* Accepts the usual 8-4-4-4-12 form, or 32 hex digits with dashes anywhere between bytes. */
        while (*s == ' ')
                s++;
        for (; *s && k < 16; ) {
                int a, b;

                if (*s == '-') {
                        s++;
                        continue;
                }
                a = unhex(s[0]);
                b = a >= 0 ? unhex(s[1]) : -1;
                if (b < 0)
                        return -EINVAL;
                u[k++] = (uint8_t) (a << 4 | b);
                s += 2;
        }
        while (*s == ' ')
                s++;
        if (k != 16 || *s)
                return -EINVAL;
        memcpy(ret, u, 16);
        return 0;
}

void conf_uuid_format(const uint8_t u[16], char ret[37]) {
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

bool conf_uuid_is_null(const uint8_t u[16]) {
        for (size_t i = 0; i < 16; i++)
                if (u[i])
                        return false;
        return true;
}

int conf_mac_parse(const char *s, uint8_t ret[6]) {
        uint8_t m[6];

        for (size_t k = 0; k < 6; k++) {
                int a = unhex(s[0]), b = a >= 0 ? unhex(s[1]) : -1;

                if (a < 0)
                        return -EINVAL;
                if (b < 0) { /* one digit, as in 0:1:2:3:4:5 */
                        m[k] = (uint8_t) a;
                        s += 1;
                } else {
                        m[k] = (uint8_t) (a << 4 | b);
                        s += 2;
                }
                if (k < 5 && *s++ != ':')
                        return -EINVAL;
        }
        if (*s)
                return -EINVAL;
        memcpy(ret, m, 6);
        return 0;
}

void conf_mac_format(const uint8_t m[6], char ret[18]) {
        snprintf(ret, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

void conf_fill_bytes(uint8_t *buf, size_t n, const char *seed, unsigned salt) {
        uint64_t h = 1469598103934665603ULL ^ salt;

        if (!seed) {
                if (getrandom(buf, n, 0) == (ssize_t) n)
                        return;
                seed = "";
                salt ^= (unsigned) (uintptr_t) buf;
        }
        for (size_t i = 0; i < n; i++) {
                for (const char *p = seed; *p; p++)
                        h = (h ^ (uint8_t) *p) * 1099511628211ULL;
                h = (h ^ i ^ salt) * 1099511628211ULL;
                buf[i] = (uint8_t) (h >> 32);
        }
}

int conf_set_uint32(ConfNode *n, const char *attr, const char *format, uint32_t v) {
        int width = 0;

        if (v == UINT32_MAX)
                return 0;
        if (streq(format, "%u"))
                return conf_node_set_attrf(n, attr, "%u", v);
        if (sscanf(format, "0x%%0%dx", &width) != 1)
                width = 1;
        return conf_node_set_attrf(n, attr, "0x%0*x", width, v);
}

int conf_take_uuid(ConfNode *n, uint8_t ret[16], char **ret_text, VbError *e) {
        _cleanup_free_ char *t = NULL;
        ConfNode *c;

        c = conf_node_use_child(n, "uuid");
        if (!c)
                return 0;
        t = conf_node_take_text(c);
        if (!t || conf_uuid_parse(t, ret) < 0)
                return conf_error(e, c, "invalid UUID '%s' (expected 32 hex digits as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                                  strempty(t));
        if (ret_text)
                *ret_text = TAKE_PTR(t);
        return 1;
}

int conf_check_name(const ConfNode *n, const char *what, const char *s, VbError *e) {
        if (isempty(s))
                return conf_error(e, n, "%s must not be empty", what);
        if (strchr(s, '/'))
                return conf_error(e, n, "%s '%s' must not contain '/'", what, s);
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return conf_error(e, n, "%s must not contain control characters", what);
        return 0;
}

int conf_check_device_seclabels(const ConfNode *n, VbError *e) {
        int r;

        if (!n)
                return 0;
        if (conf_node_is(n, "seclabel") && streq_ptr(conf_node_attr(n, "relabel"), "yes") && !conf_node_child(n, "label"))
                return conf_error(e, n, "relabel='yes' needs a <label> (model '%s')", strempty(conf_node_attr(n, "model")));
        for (size_t i = 0; i < n->n_children; i++) {
                r = conf_check_device_seclabels(n->children[i], e);
                if (r < 0)
                        return r;
        }
        return 0;
}

int conf_check_bandwidth(const ConfNode *n, VbError *e) {
        int r;

        if (!n)
                return 0;
        if (conf_node_is(n, "outbound") && conf_node_attr(n, "floor"))
                return conf_error(e, n, "attribute 'floor' is for <inbound> only (a guaranteed minimum of incoming "
                                  "traffic; expected no floor on outgoing traffic)");
        for (size_t i = 0; i < n->n_children; i++) {
                r = conf_check_bandwidth(n->children[i], e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int key_compare_value(const ConfKey *x, const ConfKey *y) {
        if (x->s || y->s)
                return strcmp(strempty(x->s), strempty(y->s));
        return (x->u > y->u) - (x->u < y->u);
}

static int key_compare(const void *a, const void *b) {
        const ConfKey *x = a, *y = b;
        int c = key_compare_value(x, y);

        return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

bool conf_keys_find_duplicate(ConfKey *keys, size_t n, size_t *ret_first, size_t *ret_second) {
        size_t first = 0, second = SIZE_MAX, group = 0;

        if (n > 1)
                qsort(keys, n, sizeof *keys, key_compare);
        for (size_t k = 1; k < n; k++) {
                if (key_compare_value(&keys[k - 1], &keys[k]) != 0)
                        group = k;
                else if (k == group + 1 && keys[k].index < second) {
                        first = keys[group].index;
                        second = keys[k].index;
                }
        }
        if (second == SIZE_MAX)
                return false;
        *ret_first = first;
        *ret_second = second;
        return true;
}
