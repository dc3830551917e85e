/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-node.h"

/* Merging and serialisation of ConfNode trees. */

typedef struct ChildKey {
        ConfNode *node;
        int major;
        int minor;
} ChildKey;

static int child_key_compare(const void *a, const void *b) {
        const ChildKey *x = a, *y = b;

        if (x->major != y->major)
                return x->major < y->major ? -1 : 1;
        return x->minor < y->minor ? -1 : x->minor > y->minor;
}

static bool same_name(const ConfNode *a, const ConfNode *b) {
        return streq(a->name, b->name) && streq_ptr(a->ns_href, b->ns_href);
}

/* The k-th generated child with the name of r, or NULL. */
static ssize_t find_generated(ConfNode **gen, size_t n_gen, const ConfNode *r, size_t k) {
        for (size_t j = 0; j < n_gen; j++)
                if (same_name(gen[j], r) && k-- == 0)
                        return (ssize_t) j;
        return -1;
}

static size_t used_before(ConfNode *const *children, size_t i) {
        size_t k = 0;

        for (size_t x = 0; x < i; x++)
                if (children[x]->used && same_name(children[x], children[i]))
                        k++;
        return k;
}

static int merge_attrs(ConfNode *gen, ConfNode *residue) {
        for (size_t i = 0; i < residue->n_attrs; i++) {
                ConfAttr *a = &residue->attrs[i];
                bool found = false;

                for (size_t j = 0; j < gen->n_attrs && !found; j++)
                        found = streq(gen->attrs[j].name, a->name) && streq_ptr(gen->attrs[j].ns_href, a->ns_href);
                if (found)
                        continue;
                if (!GREEDY_REALLOC(gen->attrs, gen->n_attrs_allocated, gen->n_attrs + 1))
                        return -ENOMEM;
                gen->attrs[gen->n_attrs++] = *a;
                *a = (ConfAttr) {};
        }
        for (size_t i = 0; i < residue->n_attrs; i++) {
                free(residue->attrs[i].name);
                free(residue->attrs[i].ns_href);
                free(residue->attrs[i].value);
        }
        residue->n_attrs = 0;
        return 0;
}

static int rank_of(bool table, const char *parent, const ConfNode *c, int prev) {
        int r;

        if (!table || c->ns_href)
                return prev;
        r = conf_order_rank(parent, c->name);
        return r >= 0 ? r : prev;
}

/* Collects the residue's children (merging used ones into their generated counterpart) and the
 * generated children that had none, with their sort keys. */
static int merge_children(ConfNode *gen, ConfNode *residue, ChildKey *keys, size_t *n_keys) {
        size_t n_gen = gen->n_children, n_res = residue ? residue->n_children : 0;
        bool table = conf_order_has_table(gen->name);
        _cleanup_free_ size_t *occurrence = new0(size_t, n_res);
        bool *matched = new0(bool, n_gen);
        int prev = -1, r = 0;

        if (!matched || !occurrence) {
                free(matched);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_res; i++)
                occurrence[i] = used_before(residue->children, i);
        for (size_t i = 0; i < n_res && r >= 0; i++) {
                ConfNode *c = residue->children[i];
                ssize_t j = c->used ? find_generated(gen->children, n_gen, c, occurrence[i]) : -1;

                prev = table ? rank_of(true, gen->name, c, prev) : (int) i;
                if (j >= 0) {
                        matched[j] = true;
                        keys[(*n_keys)++] = (ChildKey) { gen->children[j], prev, (int) i };
                        r = conf_node_merge(gen->children[j], c);
                        /* What c had is now in its generated counterpart. */
                        residue->children[i] = conf_node_free(c);
                } else if (!c->used || !conf_node_is_empty(c)) {
                        c->used = false;
                        keys[(*n_keys)++] = (ChildKey) { c, prev, (int) i };
                        residue->children[i] = NULL;
                }
        }
        prev = -1;
        for (size_t j = 0; j < n_gen && r >= 0; j++) {
                if (matched[j]) {
                        for (size_t k = 0; k < *n_keys; k++)
                                if (keys[k].node == gen->children[j])
                                        prev = keys[k].major;
                        continue;
                }
                prev = rank_of(table, gen->name, gen->children[j], prev);
                keys[(*n_keys)++] = (ChildKey) { gen->children[j], prev, 100000 + (int) j };
                r = conf_node_merge(gen->children[j], NULL);
        }
        free(matched);
        return r;
}

int conf_node_merge(ConfNode *gen, ConfNode *residue) {
        _cleanup_free_ ChildKey *keys = NULL;
        size_t n_keys = 0, total;
        int r;

        if (residue) {
                r = merge_attrs(gen, residue);
                if (r < 0)
                        return r;
                if (!gen->text && residue->text)
                        gen->text = TAKE_PTR(residue->text);
        }
        total = gen->n_children + (residue ? residue->n_children : 0);
        keys = new0(ChildKey, total);
        if (!keys)
                return -ENOMEM;
        r = merge_children(gen, residue, keys, &n_keys);
        if (r < 0)
                return r;
        if (n_keys > 1)
                qsort(keys, n_keys, sizeof(ChildKey), child_key_compare);
        if (!GREEDY_REALLOC(gen->children, gen->n_children_allocated, n_keys))
                return -ENOMEM;
        for (size_t i = 0; i < n_keys; i++)
                gen->children[i] = keys[i].node;
        gen->n_children = n_keys;
        gen->used = false;
        return 0;
}

void conf_node_sort(ConfNode *n) {
        (void) conf_node_merge(n, NULL);
}

/* Serialisation */

typedef struct NsScope {
        const char *href;
        const char *prefix;
        const struct NsScope *up;
} NsScope;

static const struct {
        const char *href;
        const char *prefix;
} known_namespaces[] = {
        { "http://libvirt.org/schemas/domain/qemu/1.0", "qemu" },
        { "http://libvirt.org/schemas/domain/lxc/1.0", "lxc" },
        { "http://libvirt.org/schemas/domain/xen/1.0", "xen" },
        { "http://libvirt.org/schemas/domain/bhyve/1.0", "bhyve" },
        { "http://libvirt.org/schemas/domain/vmware/1.0", "vmware" },
        { "http://libvirt.org/schemas/domain/ch/1.0", "ch" },
        { "http://libosinfo.org/xmlns/libvirt/domain/1.0", "libosinfo" },
        { "http://libvirt.org/schemas/network/dnsmasq/1.0", "dnsmasq" },
        { "https://virtbus.org/schemas/network/1.0", "virtbus" },
        { "http://libvirt.org/schemas/storagepool/fs/1.0", "fs" },
        { "http://libvirt.org/schemas/storagepool/rbd/1.0", "rbd" },
        { "http://www.w3.org/XML/1998/namespace", "xml" },
};

typedef struct NsTable {
        char **hrefs;
        size_t n, allocated;
} NsTable;

/* Prefixes are chosen from the namespace alone, never from how the input spelled them, so that
 * output is canonical: well-known ones by name, others ns0, ns1... in order of first use. */
static int ns_table_collect(NsTable *t, const ConfNode *n) {
        const char *hrefs[1 + n->n_attrs];
        size_t m = 0;

        hrefs[m++] = n->ns_href;
        for (size_t i = 0; i < n->n_attrs; i++)
                hrefs[m++] = n->attrs[i].ns_href;
        for (size_t i = 0; i < m; i++) {
                bool known = !hrefs[i];

                for (size_t k = 0; k < ELEMENTSOF(known_namespaces) && !known; k++)
                        known = streq(known_namespaces[k].href, hrefs[i]);
                for (size_t k = 0; k < t->n && !known; k++)
                        known = streq(t->hrefs[k], hrefs[i]);
                if (known)
                        continue;
                if (!GREEDY_REALLOC(t->hrefs, t->allocated, t->n + 1))
                        return -ENOMEM;
                t->hrefs[t->n++] = (char *) hrefs[i];
        }
        for (size_t i = 0; i < n->n_children; i++)
                if (ns_table_collect(t, n->children[i]) < 0)
                        return -ENOMEM;
        return 0;
}

static void ns_prefix(const NsTable *t, const char *href, char *buf, size_t size) {
        for (size_t k = 0; k < ELEMENTSOF(known_namespaces); k++)
                if (streq(known_namespaces[k].href, href)) {
                        snprintf(buf, size, "%s", known_namespaces[k].prefix);
                        return;
                }
        for (size_t k = 0; k < t->n; k++)
                if (streq(t->hrefs[k], href)) {
                        snprintf(buf, size, "ns%zu", k);
                        return;
                }
        snprintf(buf, size, "ns");
}

static bool ns_in_scope(const NsScope *s, const char *href) {
        for (; s; s = s->up)
                if (streq(s->href, href))
                        return true;
        return streq(href, "http://www.w3.org/XML/1998/namespace");
}

static void escape(StrBuf *b, const char *s, bool attr) {
        for (; *s; s++)
                switch (*s) {
                case '&': strbuf_append(b, "&amp;"); break;
                case '<': strbuf_append(b, "&lt;"); break;
                case '>': strbuf_append(b, "&gt;"); break;
                case '\'': strbuf_append(b, attr ? "&apos;" : "'"); break;
                case '"': strbuf_append(b, attr ? "&quot;" : "\""); break;
                case '\n': strbuf_append(b, attr ? "&#10;" : "\n"); break;
                case '\r': strbuf_append(b, "&#13;"); break;
                case '\t': strbuf_append(b, attr ? "&#9;" : "\t"); break;
                default: strbuf_append_n(b, s, 1);
                }
}

typedef struct FormatContext {
        NsTable ns;
        StrBuf *b;
} FormatContext;

static void format_qname(FormatContext *f, const char *href, const char *name) {
        char p[32];

        if (href) {
                ns_prefix(&f->ns, href, p, sizeof p);
                strbuf_appendf(f->b, "%s:", p);
        }
        strbuf_append(f->b, name);
}

static void format_ns_decl(FormatContext *f, NsScope *scopes, size_t *n_scopes, const NsScope *up, const char *href) {
        char p[32];

        if (!href || ns_in_scope(up, href))
                return;
        for (size_t i = 0; i < *n_scopes; i++)
                if (streq(scopes[i].href, href))
                        return;
        ns_prefix(&f->ns, href, p, sizeof p);
        strbuf_appendf(f->b, " xmlns:%s='", p);
        escape(f->b, href, true);
        strbuf_append(f->b, "'");
        scopes[*n_scopes] = (NsScope) { href, NULL, *n_scopes > 0 ? &scopes[*n_scopes - 1] : up };
        (*n_scopes)++;
}

static void format_node(FormatContext *f, const ConfNode *n, unsigned indent, const NsScope *up) {
        NsScope scopes[1 + n->n_attrs];
        size_t n_scopes = 0;
        const NsScope *inner;

        strbuf_indent(f->b, indent);
        strbuf_append(f->b, "<");
        format_qname(f, n->ns_href, n->name);
        format_ns_decl(f, scopes, &n_scopes, up, n->ns_href);
        for (size_t i = 0; i < n->n_attrs; i++)
                format_ns_decl(f, scopes, &n_scopes, up, n->attrs[i].ns_href);
        inner = n_scopes > 0 ? &scopes[n_scopes - 1] : up;
        for (size_t i = 0; i < n->n_attrs; i++) {
                strbuf_append(f->b, " ");
                format_qname(f, n->attrs[i].ns_href, n->attrs[i].name);
                strbuf_append(f->b, "='");
                escape(f->b, n->attrs[i].value, true);
                strbuf_append(f->b, "'");
        }
        if (n->n_children == 0 && !n->text) {
                strbuf_append(f->b, "/>\n");
                return;
        }
        strbuf_append(f->b, ">");
        if (n->n_children == 0) {
                escape(f->b, n->text, false);
        } else {
                strbuf_append(f->b, "\n");
                for (size_t i = 0; i < n->n_children; i++)
                        format_node(f, n->children[i], indent + 2, inner);
                strbuf_indent(f->b, indent);
        }
        strbuf_append(f->b, "</");
        format_qname(f, n->ns_href, n->name);
        strbuf_append(f->b, ">\n");
}

int conf_node_format(const ConfNode *n, unsigned indent, StrBuf *b) {
        FormatContext f = { .b = b };
        int r;

        r = ns_table_collect(&f.ns, n);
        if (r >= 0)
                format_node(&f, n, indent, NULL);
        free(f.ns.hrefs);
        if (r < 0)
                return r;
        return b->oom ? -ENOMEM : 0;
}

int conf_node_format_string(const ConfNode *n, char **ret) {
        StrBuf b = STRBUF_NULL;
        char *s;
        int r;

        r = conf_node_format(n, 0, &b);
        s = strbuf_steal(&b);
        if (r < 0 || !s) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}
