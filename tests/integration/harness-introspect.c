/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Compares live introspection with interfaces/org.virtbus1.*.xml files: both are reduced to a normalized text (members
 * sorted, args in order, annotations sorted, documentation dropped) and compared as text. */
#include <stdio.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "harness.h"

typedef struct Text {
        char *s;
        size_t len, size;
} Text;

static void text_add(Text *t, const char *format, ...) _printf_(2, 3);
static void text_add(Text *t, const char *format, ...) {
        va_list ap;
        char *s;
        int n;

        va_start(ap, format);
        n = vasprintf(&s, format, ap);
        va_end(ap);
        if (n < 0)
                abort();
        if (t->len + (size_t) n + 1 > t->size) {
                t->size = (t->len + (size_t) n + 1) * 2;
                t->s = realloc(t->s, t->size);
                if (!t->s)
                        abort();
        }
        memcpy(t->s + t->len, s, (size_t) n + 1);
        t->len += (size_t) n;
        free(s);
}

static char *text_take(Text *t) {
        char *s = t->s ?: strdup("");
        *t = (Text) {};
        return s;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* Sorted, concatenated. Frees the items. */
static char *join_sorted(char **items, size_t n) {
        Text t = {};

        if (n > 1)
                qsort(items, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n; i++) {
                text_add(&t, "%s", items[i]);
                free(items[i]);
        }
        free(items);
        return text_take(&t);
}

static void push(char ***items, size_t *n, char *s) {
        char **l = realloc(*items, (*n + 1) * sizeof(char *));
        if (!l)
                abort();
        l[(*n)++] = s;
        *items = l;
}

static char *prop(xmlNodePtr n, const char *name) {
        return (char *) xmlGetProp(n, BAD_CAST name);
}

static bool is_element(xmlNodePtr n, const char *name) {
        return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST name);
}

static bool ignored_annotation(const char *name, const char *value, bool property) {
        if (!name)
                return true;
        if (streq(name, "org.freedesktop.DBus.DocString") || strncmp(name, "org.freedesktop.DBus.DocString.", 31) == 0)
                return true;
        /* "true" is the default: sd-bus leaves it out, a file may spell it. */
        if (property && streq(name, "org.freedesktop.DBus.Property.EmitsChangedSignal") && streq_ptr(value, "true"))
                return true;
        return false;
}

static char *annotations(xmlNodePtr parent, const char *indent, bool property) {
        char **items = NULL;
        size_t n = 0;

        for (xmlNodePtr c = parent->children; c; c = c->next) {
                if (!is_element(c, "annotation"))
                        continue;
                char *name = prop(c, "name"), *value = prop(c, "value");
                if (!ignored_annotation(name, value, property)) {
                        char *s;
                        if (asprintf(&s, "%s@%s = %s\n", indent, name, strempty(value)) < 0)
                                abort();
                        push(&items, &n, s);
                }
                xmlFree(name);
                xmlFree(value);
        }
        return join_sorted(items, n);
}

static char *args(xmlNodePtr parent, bool method) {
        Text t = {};

        for (xmlNodePtr c = parent->children; c; c = c->next) {
                if (!is_element(c, "arg"))
                        continue;
                char *name = prop(c, "name"), *type = prop(c, "type"), *dir = prop(c, "direction");
                _cleanup_free_ char *ann = annotations(c, "      ", false);
                if (method)
                        text_add(&t, "    %s %s %s\n%s", dir ? dir : "in", strempty(type), name ? name : "-", ann);
                else
                        text_add(&t, "    %s %s\n%s", strempty(type), name ? name : "-", ann);
                xmlFree(name);
                xmlFree(type);
                xmlFree(dir);
        }
        return text_take(&t);
}

static char *member(xmlNodePtr c) {
        _cleanup_free_ char *ann = NULL, *a = NULL;
        char *name = prop(c, "name"), *s = NULL;

        if (is_element(c, "method") || is_element(c, "signal")) {
                bool method = is_element(c, "method");
                ann = annotations(c, "    ", false);
                a = args(c, method);
                if (asprintf(&s, "  %s %s\n%s%s", method ? "method" : "signal", strempty(name), ann, a) < 0)
                        abort();
        } else if (is_element(c, "property")) {
                char *type = prop(c, "type"), *access = prop(c, "access");
                ann = annotations(c, "    ", true);
                if (asprintf(&s, "  property %s %s %s\n%s", strempty(name), strempty(type), strempty(access), ann) < 0)
                        abort();
                xmlFree(type);
                xmlFree(access);
        }
        xmlFree(name);
        return s;
}

typedef struct Block {
        char *name;
        char *text;
} Block;

static void interface_block(xmlNodePtr i, Block *ret) {
        _cleanup_free_ char *ann = annotations(i, "  ", false), *members = NULL;
        char **items = NULL, *name = prop(i, "name");
        size_t n = 0;

        for (xmlNodePtr c = i->children; c; c = c->next) {
                char *m = c->type == XML_ELEMENT_NODE ? member(c) : NULL;
                if (m)
                        push(&items, &n, m);
        }
        members = join_sorted(items, n);
        ret->name = strdup(strempty(name));
        if (asprintf(&ret->text, "interface %s\n%s%s", strempty(name), ann, members) < 0)
                abort();
        xmlFree(name);
}

/* Appends the interfaces of xml whose names start with prefix (NULL: all). */
static int collect(const char *xml, const char *prefix, Block **blocks, size_t *n) {
        xmlDocPtr doc = xmlReadMemory(xml, (int) strlen(xml), "introspection.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlNodePtr root;

        if (!doc)
                return -EBADMSG;
        root = xmlDocGetRootElement(doc);
        for (xmlNodePtr i = root ? root->children : NULL; i; i = i->next) {
                if (!is_element(i, "interface"))
                        continue;
                char *name = prop(i, "name");
                bool take = name && (!prefix || strncmp(name, prefix, strlen(prefix)) == 0);
                xmlFree(name);
                if (!take)
                        continue;
                Block *b = realloc(*blocks, (*n + 1) * sizeof(Block));
                if (!b)
                        abort();
                *blocks = b;
                interface_block(i, &b[(*n)++]);
        }
        xmlFreeDoc(doc);
        return 0;
}

static int cmp_block(const void *a, const void *b) {
        return strcmp(((const Block *) a)->name, ((const Block *) b)->name);
}

static char *blocks_text(Block *blocks, size_t n) {
        Text t = {};

        if (n > 1)
                qsort(blocks, n, sizeof(Block), cmp_block);
        for (size_t i = 0; i < n; i++)
                text_add(&t, "%s", blocks[i].text);
        return text_take(&t);
}

static void blocks_free(Block *blocks, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(blocks[i].name);
                free(blocks[i].text);
        }
        free(blocks);
}

char *harness_introspection_normalize(const char *xml, const char *prefix, char ***ret_names) {
        Block *blocks = NULL;
        size_t n = 0;
        char *s;

        if (collect(xml, prefix, &blocks, &n) < 0)
                return NULL;
        s = blocks_text(blocks, n);
        if (ret_names) {
                char **names = new0(char *, n + 1);
                if (!names)
                        abort();
                for (size_t i = 0; i < n; i++)
                        names[i] = strdup(blocks[i].name);
                *ret_names = names;
        }
        blocks_free(blocks, n);
        return s;
}

/* The first line where a and b differ, for the failure message. */
static void print_first_difference(const char *a, const char *b) {
        unsigned line = 1;

        while (*a && *a == *b) {
                if (*a == '\n')
                        line++;
                a++;
                b++;
        }
        while (line > 1 && a[-1] != '\n') {
                a--;
                b--;
        }
        print_error("first difference at line %u:\n  expected: %.*s\n  live:     %.*s\n", line,
                    (int) strcspn(a, "\n"), a, (int) strcspn(b, "\n"), b);
}

void _harness_assert_introspection(const char *file, int line, sd_bus *bus, const char *path, const char **files) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *expected = NULL, *live = NULL;
        Block *blocks = NULL;
        size_t n = 0;
        const char *xml;
        int r;

        for (const char **f = files; *f; f++) {
                _cleanup_free_ char *p = harness_source_path(*f);
                _cleanup_free_ char *s = harness_read_file(p);
                if (!s || collect(s, NULL, &blocks, &n) < 0) {
                        print_error("%s:%d: cannot read or parse %s\n", file, line, p);
                        blocks_free(blocks, n);
                        _fail(file, line);
                }
        }
        expected = blocks_text(blocks, n);
        blocks_free(blocks, n);

        r = sd_bus_call_method(bus, HARNESS_SERVICE, path, "org.freedesktop.DBus.Introspectable", "Introspect", &e,
                               &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &xml);
        if (r < 0) {
                print_error("%s:%d: introspecting %s failed: %s\n", file, line, path, e.message ?: strerror(-r));
                _fail(file, line);
        }
        live = harness_introspection_normalize(xml, "org.virtbus1.", NULL);
        if (!live) {
                print_error("%s:%d: the live introspection of %s is not XML:\n%s\n", file, line, path, xml);
                _fail(file, line);
        }
        if (!streq(expected, live)) {
                print_error("%s:%d: live introspection of %s differs from the interface files (normalized; "
                            "org.freedesktop.DBus.DocString ignored)\n", file, line, path);
                print_first_difference(expected, live);
                print_error("---- expected ----\n%s---- live ----\n%s---- end ----\n", expected, live);
                _fail(file, line);
        }
}
