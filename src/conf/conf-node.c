/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libxml/tree.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-node.h"
#include "conf/conf-schema.h"
#include "util/hashmap.h"

static void *mfree(void *p) {
        free(p);
        return NULL;
}

/* Element names come from a small set (the schema's), and a kept definition holds a node for most of
 * its elements: each name is stored once per process. The set is bounded, since foreign namespaces
 * (metadata) may bring any name; past the bound, nodes own their names. */
#define NAME_INTERN_MAX 4096

static Hashmap *interned_names;
/* Trees are built on the event loop and in the parse workers (src/bus/util/worker.c) at once. */
static pthread_mutex_t interned_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *intern_name_locked(const char *name) {
        char *copy;

        copy = hashmap_get(interned_names, name);
        if (copy)
                return copy;
        if (hashmap_size(interned_names) >= NAME_INTERN_MAX)
                return NULL;
        if (!interned_names && !(interned_names = hashmap_new()))
                return NULL;
        copy = strdup(name);
        if (!copy || hashmap_put(interned_names, copy, copy) < 0) {
                free(copy);
                return NULL;
        }
        return copy;
}

static const char *intern_name(const char *name) {
        const char *interned;

        pthread_mutex_lock(&interned_lock);
        interned = intern_name_locked(name);
        pthread_mutex_unlock(&interned_lock);
        return interned;
}

ConfNode *conf_node_new(const char *name) {
        ConfNode *n = new0(ConfNode, 1);
        const char *interned;

        if (!n)
                return NULL;
        interned = intern_name(name);
        if (interned)
                n->name = (char *) interned;
        else {
                n->name = strdup(name);
                n->name_owned = true;
        }
        if (!n->name) {
                free(n);
                return NULL;
        }
        return n;
}

int conf_node_rename(ConfNode *n, const char *name) {
        ConfNode *tmp = conf_node_new(name);
        char *old_name;
        bool old_owned;

        if (!tmp)
                return -ENOMEM;
        old_name = n->name;
        old_owned = n->name_owned;
        n->name = tmp->name;
        n->name_owned = tmp->name_owned;
        tmp->name = old_name;
        tmp->name_owned = old_owned;
        conf_node_free(tmp);
        return 0;
}

static void conf_attr_done(ConfAttr *a) {
        free(a->name);
        free(a->ns_href);
        free(a->value);
}

ConfNode *conf_node_free(ConfNode *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_attrs; i++)
                conf_attr_done(&n->attrs[i]);
        free(n->attrs);
        for (size_t i = 0; i < n->n_children; i++)
                conf_node_free(n->children[i]);
        free(n->children);
        if (n->name_owned)
                free(n->name);
        free(n->ns_href);
        free(n->text);
        free(n);
        return NULL;
}

static int conf_node_add_attr_full(ConfNode *n, const char *name, const char *ns_href, const char *value) {
        ConfAttr *a;

        if (!GREEDY_REALLOC(n->attrs, n->n_attrs_allocated, n->n_attrs + 1))
                return -ENOMEM;
        a = &n->attrs[n->n_attrs];
        *a = (ConfAttr) {
                .name = strdup(name),
                .ns_href = ns_href ? strdup(ns_href) : NULL,
                .value = strdup(value),
        };
        if (!a->name || !a->value || (ns_href && !a->ns_href)) {
                conf_attr_done(a);
                return -ENOMEM;
        }
        n->n_attrs++;
        return 0;
}

int conf_node_append(ConfNode *n, ConfNode *child) {
        if (!child)
                return -ENOMEM;
        if (!GREEDY_REALLOC(n->children, n->n_children_allocated, n->n_children + 1)) {
                conf_node_free(child);
                return -ENOMEM;
        }
        n->children[n->n_children++] = child;
        return 0;
}

ConfNode *conf_node_copy(const ConfNode *n) {
        _cleanup_(conf_node_freep) ConfNode *c = NULL;

        c = conf_node_new(n->name);
        if (!c)
                return NULL;
        c->line = n->line;
        c->used = n->used;
        if ((n->ns_href && !(c->ns_href = strdup(n->ns_href))) || (n->text && !(c->text = strdup(n->text))))
                return NULL;
        for (size_t i = 0; i < n->n_attrs; i++)
                if (conf_node_add_attr_full(c, n->attrs[i].name, n->attrs[i].ns_href, n->attrs[i].value) < 0)
                        return NULL;
        for (size_t i = 0; i < n->n_children; i++)
                if (conf_node_append(c, conf_node_copy(n->children[i])) < 0)
                        return NULL;
        return TAKE_PTR(c);
}

static int conf_attr_compare(const void *a, const void *b) {
        const ConfAttr *x = a, *y = b;
        int r = strcmp(strempty(x->ns_href), strempty(y->ns_href));

        return r != 0 ? r : strcmp(x->name, y->name);
}

static bool xml_is_blank(const char *s) {
        for (; s && *s; s++)
                if (!strchr(" \t\r\n", *s))
                        return false;
        return true;
}

static int conf_node_fill_from_xml(ConfNode *c, xmlNode *x) {
        StrBuf text = STRBUF_NULL;

        for (xmlAttr *a = x->properties; a; a = a->next) {
                _cleanup_free_ char *v = (char *) xmlNodeGetContent((xmlNode *) a);

                if (conf_node_add_attr_full(c, (const char *) a->name,
                                            a->ns ? (const char *) a->ns->href : NULL, strempty(v)) < 0)
                        return -ENOMEM;
        }
        if (c->n_attrs > 1)
                qsort(c->attrs, c->n_attrs, sizeof(ConfAttr), conf_attr_compare);
        for (xmlNode *k = x->children; k; k = k->next)
                if (k->type == XML_ELEMENT_NODE) {
                        if (conf_node_append(c, conf_node_from_xml(k)) < 0)
                                return -ENOMEM;
                } else if ((k->type == XML_TEXT_NODE || k->type == XML_CDATA_SECTION_NODE) && k->content)
                        strbuf_append(&text, (const char *) k->content);
        c->text = strbuf_steal(&text);
        if (!c->text)
                return -ENOMEM;
        /* Whitespace-only text is layout, not content: dropped, so that indentation never matters. */
        if (xml_is_blank(c->text))
                c->text = mfree(c->text);
        return 0;
}

ConfNode *conf_node_from_xml(const void *xml_node) {
        xmlNode *x = (xmlNode *) xml_node;
        _cleanup_(conf_node_freep) ConfNode *c = NULL;

        c = conf_node_new((const char *) x->name);
        if (!c)
                return NULL;
        c->line = (unsigned) xmlGetLineNo(x);
        if (x->ns && x->ns->href && !(c->ns_href = strdup((const char *) x->ns->href)))
                return NULL;
        if (conf_node_fill_from_xml(c, x) < 0)
                return NULL;
        return TAKE_PTR(c);
}

int conf_node_parse_string(const char *xml, const char *schema, ConfNode **ret, VbError *reterr) {
        xmlDocPtr doc = NULL;
        ConfNode *root;
        int r;

        r = conf_schema_parse_and_validate(xml, schema, (void **) &doc, reterr);
        if (r < 0)
                return r;
        root = conf_node_from_xml(xmlDocGetRootElement(doc));
        xmlFreeDoc(doc);
        if (!root)
                return -ENOMEM;
        *ret = root;
        return 0;
}

bool conf_node_is_empty(const ConfNode *n) {
        if (n->n_attrs > 0 || n->text)
                return false;
        for (size_t i = 0; i < n->n_children; i++)
                if (!n->children[i]->used || !conf_node_is_empty(n->children[i]))
                        return false;
        return true;
}

bool conf_node_is(const ConfNode *n, const char *name) {
        return n && !n->ns_href && streq(n->name, name);
}

static ssize_t conf_node_find_attr(const ConfNode *n, const char *name) {
        for (size_t i = 0; i < n->n_attrs; i++)
                if (!n->attrs[i].ns_href && streq(n->attrs[i].name, name))
                        return (ssize_t) i;
        return -1;
}

const char *conf_node_attr(const ConfNode *n, const char *name) {
        ssize_t i = n ? conf_node_find_attr(n, name) : -1;

        return i < 0 ? NULL : n->attrs[i].value;
}

ConfNode *conf_node_child(const ConfNode *n, const char *name) {
        for (size_t i = 0; n && i < n->n_children; i++)
                if (!n->children[i]->used && conf_node_is(n->children[i], name))
                        return n->children[i];
        return NULL;
}

char *conf_node_take_attr(ConfNode *n, const char *name) {
        ssize_t i = n ? conf_node_find_attr(n, name) : -1;
        char *v;

        if (i < 0)
                return NULL;
        v = TAKE_PTR(n->attrs[i].value);
        conf_attr_done(&n->attrs[i]);
        memmove(n->attrs + i, n->attrs + i + 1, (n->n_attrs - (size_t) i - 1) * sizeof(ConfAttr));
        n->n_attrs--;
        return v;
}

char *conf_node_take_text(ConfNode *n) {
        return n ? TAKE_PTR(n->text) : NULL;
}

/* A child typed code took whole, in a parent whose children are placed by an order table: nothing of it
 * is left to merge back, and its place comes from the table, so it need not be kept. Unless an element
 * the table doesn't know follows it: that one is placed after its predecessor. */
static bool placeholder_droppable(const ConfNode *parent, size_t i) {
        const ConfNode *c = parent->children[i], *next = i + 1 < parent->n_children ? parent->children[i + 1] : NULL;

        if (!c->used || c->ns_href || c->n_attrs > 0 || c->n_children > 0 || c->text)
                return false;
        if (conf_order_rank(parent->name, c->name) < 0)
                return false;
        return !next || (!next->ns_href && conf_order_rank(parent->name, next->name) >= 0);
}

void conf_node_compact(ConfNode *n) {
        if (!n)
                return;
        if (conf_order_has_table(n->name)) {
                size_t k = 0;
                for (size_t i = 0; i < n->n_children; i++) {
                        if (placeholder_droppable(n, i))
                                conf_node_free(n->children[i]);
                        else
                                n->children[k++] = n->children[i];
                }
                n->n_children = k;
        }
        if (n->n_attrs == 0) {
                n->attrs = mfree(n->attrs);
                n->n_attrs_allocated = 0;
        } else if (n->n_attrs < n->n_attrs_allocated) {
                ConfAttr *a = realloc(n->attrs, n->n_attrs * sizeof(ConfAttr));
                if (a) {
                        n->attrs = a;
                        n->n_attrs_allocated = n->n_attrs;
                }
        }
        if (n->n_children == 0) {
                n->children = mfree(n->children);
                n->n_children_allocated = 0;
        } else if (n->n_children < n->n_children_allocated) {
                ConfNode **c = realloc(n->children, n->n_children * sizeof(ConfNode *));
                if (c) {
                        n->children = c;
                        n->n_children_allocated = n->n_children;
                }
        }
        for (size_t i = 0; i < n->n_children; i++)
                conf_node_compact(n->children[i]);
}

ConfNode *conf_node_use_child(ConfNode *n, const char *name) {
        ConfNode *c = conf_node_child(n, name);

        if (c)
                c->used = true;
        return c;
}

ConfNode *conf_node_detach_child(ConfNode *n, size_t i) {
        ConfNode *c = n->children[i];

        memmove(n->children + i, n->children + i + 1, (n->n_children - i - 1) * sizeof(ConfNode *));
        n->n_children--;
        return c;
}

int conf_node_set_attr(ConfNode *n, const char *name, const char *value) {
        ssize_t i;

        if (!value)
                return 0;
        i = conf_node_find_attr(n, name);
        if (i >= 0)
                return free_and_strdup(&n->attrs[i].value, value);
        return conf_node_add_attr_full(n, name, NULL, value);
}

int conf_node_set_attrf(ConfNode *n, const char *name, const char *format, ...) {
        _cleanup_free_ char *v = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&v, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return conf_node_set_attr(n, name, v);
}

int conf_node_set_text(ConfNode *n, const char *text) {
        return free_and_strdup(&n->text, text);
}

ConfNode *conf_node_add(ConfNode *n, const char *name) {
        ConfNode *c = conf_node_new(name);

        if (conf_node_append(n, c) < 0)
                return NULL;
        return c;
}

int conf_node_add_text(ConfNode *n, const char *name, const char *text) {
        ConfNode *c;

        if (!text)
                return 0;
        c = conf_node_add(n, name);
        if (!c)
                return -ENOMEM;
        return conf_node_set_text(c, text);
}
