/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libxml/parser.h>
#include <pthread.h>
#include <libxml/relaxng.h>
#include <libxml/hash.h>
#include <libxml/tree.h>
#include <math.h> /* INFINITY, isinf(): no libm needed */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-schema-hint.h"
#include "conf/conf-schema.h"
#include "util/strbuf.h"

/* What the schemas allow for each (element, attribute): built once from the embedded schema
 * sources by walking every <attribute name=...> to its nearest <element name=...>. */
typedef struct AttrHint {
        char *element;
        char *attr; /* TEXT_KEY: the element's text */
        char **values;
        size_t n_values, allocated;
        /* Whole numbers in [min, max] (XML Schema integer types and their facets) and/or the listed
         * values, unless some definition of this name takes other text (open). */
        bool ranged, listed, open;
        long double min, max;
} AttrHint;

#define TEXT_KEY "#text"

static AttrHint *hints;
static size_t n_hints, hints_allocated;
/* Built once, by whichever thread reports first (parsing runs off the event loop too). */
static pthread_once_t hints_once = PTHREAD_ONCE_INIT;

static AttrHint *hint_find(const char *element, const char *attr, bool create) {
        for (size_t i = 0; i < n_hints; i++)
                if (streq(hints[i].element, element) && streq(hints[i].attr, attr))
                        return &hints[i];
        if (!create || !GREEDY_REALLOC(hints, hints_allocated, n_hints + 1))
                return NULL;
        hints[n_hints] = (AttrHint) { .element = strdup(element), .attr = strdup(attr) };
        return &hints[n_hints++];
}

static bool is_rng(const xmlNode *n, const char *name) {
        return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, (const xmlChar *) name);
}

static void hint_add_values(AttrHint *h, xmlNode *n) {
        for (xmlNode *c = n->children; c; c = c->next) {
                if (is_rng(c, "value")) {
                        _cleanup_free_ char *v = (char *) xmlNodeGetContent(c);
                        bool dup = false;

                        for (size_t i = 0; v && i < h->n_values && !dup; i++)
                                dup = streq(h->values[i], v);
                        if (v && !dup && GREEDY_REALLOC(h->values, h->allocated, h->n_values + 1))
                                h->values[h->n_values++] = TAKE_PTR(v);
                } else if (is_rng(c, "choice") || is_rng(c, "optional"))
                        hint_add_values(h, c);
        }
}

static void hints_walk(xmlNode *n) {
        for (xmlNode *c = n; c; c = c->next) {
                if (is_rng(c, "attribute")) {
                        _cleanup_free_ char *attr = (char *) xmlGetProp(c, (const xmlChar *) "name");
                        _cleanup_free_ char *el = NULL;
                        AttrHint *h;

                        for (xmlNode *p = c->parent; p && !el; p = p->parent)
                                if (is_rng(p, "element"))
                                        el = (char *) xmlGetProp(p, (const xmlChar *) "name");
                        if (attr && el && (h = hint_find(el, attr, true)))
                                hint_add_values(h, c);
                }
                if (c->children)
                        hints_walk(c->children);
        }
}

/* Numeric ranges ------------------------------------------------------------------------------------------ */

/* The <define>s of every embedded schema, so that <ref>s can be followed while the hints are built. */
typedef struct Defines {
        xmlNode **nodes;
        size_t n, allocated;
        xmlHashTablePtr by_name; /* the first <define> of each name */
} Defines;

static xmlNode *define_find(const Defines *d, const char *name) {
        if (name && d->by_name)
                return xmlHashLookup(d->by_name, (const xmlChar *) name);
        for (size_t i = 0; name && i < d->n; i++) {
                _cleanup_free_ char *dn = (char *) xmlGetProp(d->nodes[i], (const xmlChar *) "name");
                if (dn && streq(dn, name))
                        return d->nodes[i];
        }
        return NULL;
}

static void defines_collect(Defines *d, xmlNode *n) {
        for (xmlNode *c = n; c; c = c->next)
                if (is_rng(c, "define") && GREEDY_REALLOC(d->nodes, d->allocated, d->n + 1)) {
                        _cleanup_free_ char *name = (char *) xmlGetProp(c, (const xmlChar *) "name");

                        d->nodes[d->n++] = c;
                        if (name && d->by_name && !xmlHashLookup(d->by_name, (const xmlChar *) name))
                                (void) xmlHashAddEntry(d->by_name, (const xmlChar *) name, c);
                }
                else if (is_rng(c, "grammar") || is_rng(c, "include"))
                        defines_collect(d, c->children);
}

/* The range of an XML Schema integer type, or false for any other type. */
static bool type_range(const char *type, long double *min, long double *max) {
        static const struct {
                const char *name;
                long double min, max;
        } types[] = {
                { "byte", -128.0L, 127.0L },
                { "unsignedByte", 0.0L, 255.0L },
                { "short", -32768.0L, 32767.0L },
                { "unsignedShort", 0.0L, 65535.0L },
                { "int", -2147483648.0L, 2147483647.0L },
                { "unsignedInt", 0.0L, 4294967295.0L },
                { "long", -9223372036854775808.0L, 9223372036854775807.0L },
                { "unsignedLong", 0.0L, 18446744073709551615.0L },
                { "integer", -INFINITY, INFINITY },
                { "nonNegativeInteger", 0.0L, INFINITY },
                { "positiveInteger", 1.0L, INFINITY },
        };

        for (size_t i = 0; type && i < ELEMENTSOF(types); i++)
                if (streq(types[i].name, type)) {
                        *min = types[i].min;
                        *max = types[i].max;
                        return true;
                }
        return false;
}

static void hint_add_range(AttrHint *h, xmlNode *data) {
        _cleanup_free_ char *type = (char *) xmlGetProp(data, (const xmlChar *) "type");
        long double min, max;

        if (!type_range(type, &min, &max)) {
                h->open = true;
                return;
        }
        for (xmlNode *p = data->children; p; p = p->next) {
                _cleanup_free_ char *name = is_rng(p, "param") ? (char *) xmlGetProp(p, (const xmlChar *) "name") : NULL;
                _cleanup_free_ char *v = name ? (char *) xmlNodeGetContent(p) : NULL;

                long double x = v ? strtold(v, NULL) : 0;

                if (v && streq(name, "minInclusive") && x > min)
                        min = x;
                else if (v && streq(name, "maxInclusive") && x < max)
                        max = x;
        }
        /* Two definitions of one name: a value is refused only when it fits neither. */
        h->min = h->ranged && h->min < min ? h->min : min;
        h->max = h->ranged && h->max > max ? h->max : max;
        h->ranged = true;
}

/* Records the text a pattern takes (an attribute's value, or an element's own text), following <ref>s
 * but neither into child elements nor, for an element's text, into its attributes. */
static void hint_scan_text(AttrHint *h, const Defines *d, xmlNode *n, unsigned depth) {
        if (depth > 32) {
                h->open = true;
                return;
        }
        for (xmlNode *c = n->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE || is_rng(c, "element") || is_rng(c, "attribute") || is_rng(c, "empty") ||
                    is_rng(c, "notAllowed") || is_rng(c, "name") || is_rng(c, "anyName") || is_rng(c, "nsName"))
                        continue;
                if (is_rng(c, "data"))
                        hint_add_range(h, c);
                else if (is_rng(c, "ref")) {
                        _cleanup_free_ char *name = (char *) xmlGetProp(c, (const xmlChar *) "name");
                        xmlNode *def = define_find(d, name);

                        if (def)
                                hint_scan_text(h, d, def, depth + 1);
                        else
                                h->open = true;
                } else if (is_rng(c, "value")) {
                        _cleanup_free_ char *v = (char *) xmlNodeGetContent(c);
                        bool dup = false;

                        for (size_t i = 0; v && i < h->n_values && !dup; i++)
                                dup = streq(h->values[i], v);
                        if (v && !dup && GREEDY_REALLOC(h->values, h->allocated, h->n_values + 1))
                                h->values[h->n_values++] = TAKE_PTR(v);
                        h->listed = true;
                } else if (is_rng(c, "text") || is_rng(c, "list") || is_rng(c, "mixed") ||
                           is_rng(c, "parentRef") || is_rng(c, "externalRef"))
                        h->open = true;
                else
                        hint_scan_text(h, d, c, depth + 1); /* choice, group, interleave, optional, ... */
        }
}

static void ranges_walk(const Defines *d, xmlNode *n) {
        for (xmlNode *c = n; c; c = c->next) {
                _cleanup_free_ char *name = NULL, *el = NULL;
                AttrHint *h = NULL;

                if (is_rng(c, "element") && (name = (char *) xmlGetProp(c, (const xmlChar *) "name")))
                        h = hint_find(name, TEXT_KEY, true);
                else if (is_rng(c, "attribute") && (name = (char *) xmlGetProp(c, (const xmlChar *) "name"))) {
                        for (xmlNode *p = c->parent; p && !el; p = p->parent)
                                if (is_rng(p, "element"))
                                        el = (char *) xmlGetProp(p, (const xmlChar *) "name");
                        if (el && (h = hint_find(el, name, true)) && !c->children)
                                h->open = true; /* <attribute name=...> alone takes any text */
                }
                if (h)
                        hint_scan_text(h, d, c, 0);
                if (c->children)
                        ranges_walk(d, c->children);
        }
}

/* Required attributes ------------------------------------------------------------------------------------- */

/* For an element under a parent (by names; "" for a document's root) in a document of a root, the
 * attributes that every definition of it there requires: libxml2 says only that the parent's content does
 * not fit when one is missing. */
typedef struct NameSet {
        char **names;
        size_t n, allocated;
} NameSet;

/* Keyed by (root, parent, element); root: the document's root element, as schemas differ by kind. Each
 * entry a NameSet. */
static xmlHashTablePtr required;

static void name_set_done(NameSet *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->names[i]);
        free(s->names);
        *s = (NameSet) {};
}

static bool name_set_has(const NameSet *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->names[i], name))
                        return true;
        return false;
}

static void name_set_add(NameSet *s, const char *name) {
        char *c;

        if (name_set_has(s, name) || !GREEDY_REALLOC(s->names, s->allocated, s->n + 1) || !(c = strdup(name)))
                return;
        s->names[s->n++] = c;
}

/* Keeps in a only the names b has too. */
static void name_set_intersect(NameSet *a, const NameSet *b) {
        size_t k = 0;

        for (size_t i = 0; i < a->n; i++)
                if (name_set_has(b, a->names[i]))
                        a->names[k++] = a->names[i];
                else
                        free(a->names[i]);
        a->n = k;
}

static xmlNode *ref_target(const Defines *d, xmlNode *ref) {
        _cleanup_free_ char *name = (char *) xmlGetProp(ref, (const xmlChar *) "name");

        return define_find(d, name);
}

static bool pattern_required(const Defines *d, xmlNode *n, NameSet *out, unsigned depth);

/* The attributes one pattern node always gives: see pattern_required(). */
static bool node_required(const Defines *d, xmlNode *c, NameSet *out, unsigned depth) {
        if (depth > 32)
                return false;
        if (is_rng(c, "attribute")) {
                _cleanup_free_ char *name = (char *) xmlGetProp(c, (const xmlChar *) "name");
                _cleanup_free_ char *ns = (char *) xmlGetProp(c, (const xmlChar *) "ns");

                if (name && isempty(ns))
                        name_set_add(out, name);
                return true;
        }
        if (is_rng(c, "ref")) {
                xmlNode *def = ref_target(d, c);

                return def && pattern_required(d, def, out, depth + 1);
        }
        if (is_rng(c, "group") || is_rng(c, "interleave") || is_rng(c, "oneOrMore") || is_rng(c, "mixed"))
                return pattern_required(d, c, out, depth + 1);
        if (is_rng(c, "choice")) {
                NameSet all = {};
                bool first = true;

                for (xmlNode *b = c->children; b; b = b->next) {
                        NameSet one = {};

                        if (b->type != XML_ELEMENT_NODE)
                                continue;
                        if (!node_required(d, b, &one, depth + 1)) {
                                name_set_done(&one);
                                name_set_done(&all);
                                return false;
                        }
                        if (first)
                                all = one;
                        else {
                                name_set_intersect(&all, &one);
                                name_set_done(&one);
                        }
                        first = false;
                }
                for (size_t i = 0; i < all.n; i++)
                        name_set_add(out, all.names[i]);
                name_set_done(&all);
        }
        /* optional, zeroOrMore, element, text, data, value, list, empty, notAllowed: nothing required */
        return true;
}

/* The attributes a pattern (the children of n, as a group) always has: through <ref>s, groups and
 * interleaves, in every branch of a <choice>; never under <optional>/<zeroOrMore> nor in a child element.
 * Returns false when the pattern could not be followed (then nothing is claimed). */
static bool pattern_required(const Defines *d, xmlNode *n, NameSet *out, unsigned depth) {
        for (xmlNode *c = n->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && !node_required(d, c, out, depth))
                        return false;
        return true;
}

/* The <element>s a pattern may hold directly, through <ref>s and every pattern but a child element. */
static void pattern_children(const Defines *d, xmlNode *n, void (*found)(xmlNode *child, void *userdata),
                             void *userdata, unsigned depth) {
        if (depth > 32)
                return;
        for (xmlNode *c = n->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE || is_rng(c, "attribute"))
                        continue;
                if (is_rng(c, "element"))
                        found(c, userdata);
                else if (is_rng(c, "ref")) {
                        xmlNode *def = ref_target(d, c);

                        if (def)
                                pattern_children(d, def, found, userdata, depth + 1);
                } else
                        pattern_children(d, c, found, userdata, depth + 1);
        }
}

static void children_add(const char *root, const char *parent, xmlNode *child);

typedef struct RequiredWalk {
        const Defines *defines;
        const char *root, *parent;
        xmlNode **seen; /* element definitions reached from the root, each walked once */
        size_t n_seen, allocated;
} RequiredWalk;

static void required_record(xmlNode *child, void *userdata) {
        RequiredWalk *w = userdata;
        _cleanup_free_ char *name = (char *) xmlGetProp(child, (const xmlChar *) "name");
        NameSet attrs = {}, *r;
        bool followed, seen = false;

        if (*w->parent)
                children_add(w->root, w->parent, child);
        if (!name || !required)
                return;
        for (size_t i = 0; i < w->n_seen && !seen; i++)
                seen = w->seen[i] == child;
        if (!seen && GREEDY_REALLOC(w->seen, w->allocated, w->n_seen + 1))
                w->seen[w->n_seen++] = child;
        followed = pattern_required(w->defines, child, &attrs, 0);
        r = xmlHashLookup3(required, (const xmlChar *) w->root, (const xmlChar *) w->parent, (const xmlChar *) name);
        if (!r) {
                r = new0(NameSet, 1);
                if (!r || xmlHashAddEntry3(required, (const xmlChar *) w->root, (const xmlChar *) w->parent,
                                           (const xmlChar *) name, r) < 0) {
                        free(r);
                        name_set_done(&attrs);
                        return;
                }
                *r = attrs;
                if (!followed)
                        name_set_done(r);
                return;
        }
        if (!followed)
                name_set_done(r);
        else
                name_set_intersect(r, &attrs);
        name_set_done(&attrs);
}

/* Every element definition reachable from one root definition, with its parent's name. */
static void required_from_root(const Defines *d, xmlNode *root) {
        _cleanup_free_ char *root_name = (char *) xmlGetProp(root, (const xmlChar *) "name");
        RequiredWalk w = { .defines = d, .root = root_name, .parent = "" };

        if (!root_name)
                return;
        required_record(root, &w);
        for (size_t i = 0; i < w.n_seen; i++) {
                _cleanup_free_ char *name = (char *) xmlGetProp(w.seen[i], (const xmlChar *) "name");

                w.parent = name;
                if (name)
                        pattern_children(d, w.seen[i], required_record, &w, 0);
        }
        free(w.seen);
}

static void start_root(xmlNode *root, void *userdata) {
        required_from_root(userdata, root);
}

static void required_walk(const Defines *d, xmlNode *n) {
        for (xmlNode *c = n; c; c = c->next)
                if (is_rng(c, "start"))
                        pattern_children(d, c, start_root, (void *) d, 0);
                else if (is_rng(c, "grammar"))
                        required_walk(d, c->children);
}

static const NameSet *required_find(const char *root, const char *parent, const char *element) {
        return required ? xmlHashLookup3(required, (const xmlChar *) root, (const xmlChar *) parent,
                                         (const xmlChar *) element)
                        : NULL;
}

/* Child elements ------------------------------------------------------------------------------------------ */

/* For each element name in a document of a root, the names of the elements it may hold directly, recorded
 * by the walk of required attributes above. One name can be defined in several places of one document with
 * different content (<source> in a file disk and in a network disk, <target> in a disk and in an
 * interface): the union of all of them is kept, keyed by the element's own name, not by where it sits. That
 * is enough to tell a child that is never allowed in such an element from one that may be; the generic
 * message covers the rest (given twice, wrong attributes or content). */
typedef struct ChildSet {
        NameSet names;
        bool open; /* some definition takes elements of any name in no namespace */
} ChildSet;

static xmlHashTablePtr children; /* (root, element name) -> ChildSet */

static void trim(char *v);

/* The names a name class of an unnamed <element> allows (<name>, <choice>); anyName/nsName that take
 * elements in no namespace make the set open. */
static void name_class_collect(xmlNode *nc, ChildSet *s) {
        if (is_rng(nc, "name")) {
                _cleanup_free_ char *v = (char *) xmlNodeGetContent(nc);
                _cleanup_free_ char *ns = (char *) xmlGetProp(nc, (const xmlChar *) "ns");

                if (v && isempty(ns)) {
                        trim(v);
                        name_set_add(&s->names, v);
                }
        } else if (is_rng(nc, "choice")) {
                for (xmlNode *c = nc->children; c; c = c->next)
                        if (c->type == XML_ELEMENT_NODE)
                                name_class_collect(c, s);
        } else if (is_rng(nc, "anyName")) {
                bool no_ns_excluded = false;

                /* <anyName><except><nsName ns=""/></except></anyName>: foreign elements only */
                for (xmlNode *ex = nc->children; ex; ex = ex->next)
                        for (xmlNode *c = is_rng(ex, "except") ? ex->children : NULL; c; c = c->next)
                                if (is_rng(c, "nsName")) {
                                        _cleanup_free_ char *ns = (char *) xmlGetProp(c, (const xmlChar *) "ns");
                                        no_ns_excluded = no_ns_excluded || isempty(ns);
                                }
                if (!no_ns_excluded)
                        s->open = true;
        } else if (is_rng(nc, "nsName")) {
                _cleanup_free_ char *ns = (char *) xmlGetProp(nc, (const xmlChar *) "ns");

                if (isempty(ns))
                        s->open = true;
        } else
                s->open = true; /* a name class not understood here: claim nothing */
}

static void children_record(xmlNode *child, void *userdata) {
        ChildSet *s = userdata;
        _cleanup_free_ char *name = (char *) xmlGetProp(child, (const xmlChar *) "name");

        if (name) {
                trim(name);
                name_set_add(&s->names, name);
                return;
        }
        for (xmlNode *nc = child->children; nc; nc = nc->next)
                if (nc->type == XML_ELEMENT_NODE) {
                        name_class_collect(nc, s); /* the name class comes first */
                        return;
                }
}

/* Records that <child> (an <element> pattern) may appear in a <parent> of a document of root. */
static void children_add(const char *root, const char *parent, xmlNode *child) {
        ChildSet *s;

        if (!children)
                return;
        s = xmlHashLookup2(children, (const xmlChar *) root, (const xmlChar *) parent);
        if (!s) {
                s = new0(ChildSet, 1);
                if (!s || xmlHashAddEntry2(children, (const xmlChar *) root, (const xmlChar *) parent, s) < 0) {
                        free(s);
                        return;
                }
        }
        children_record(child, s);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

#define ALLOWED_SHOWN 12

/* The first report (< 0) of check on an element child of n, in document order; 0 when none reported. */
static int report_in_children(const xmlNode *n, int (*check)(const xmlNode *n, VbError *reterr), VbError *reterr) {
        for (const xmlNode *c = n->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE) {
                        int r = check(c, reterr);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* The first element at or below n (document order) whose name no definition of its parent's name allows
 * there: named with its own line and the names allowed. Returns < 0 when one was reported, 0 when none. */
static int report_unknown_in(const xmlNode *n, VbError *reterr) {
        const xmlNode *root = n->doc ? xmlDocGetRootElement(n->doc) : NULL;
        const ChildSet *s = children && !n->ns && root ? xmlHashLookup2(children, root->name, n->name) : NULL;

        for (const xmlNode *c = n->children; s && !s->open && c; c = c->next) {
                _cleanup_free_ char **sorted = NULL;
                StrBuf b = STRBUF_NULL;
                _cleanup_free_ char *allowed = NULL;

                if (c->type != XML_ELEMENT_NODE || c->ns || name_set_has(&s->names, (const char *) c->name))
                        continue;
                if (s->names.n == 0)
                        return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                            "line %ld: element '%s' is not allowed in <%s> (it takes no child elements)",
                                            xmlGetLineNo(c), (const char *) c->name, (const char *) n->name);
                sorted = malloc(s->names.n * sizeof(char *));
                if (!sorted)
                        return -ENOMEM;
                memcpy(sorted, s->names.names, s->names.n * sizeof(char *));
                qsort(sorted, s->names.n, sizeof(char *), name_cmp);
                for (size_t i = 0; i < s->names.n && i < ALLOWED_SHOWN; i++)
                        strbuf_appendf(&b, "%s%s", i ? ", " : "", sorted[i]);
                if (s->names.n > ALLOWED_SHOWN)
                        strbuf_appendf(&b, ", ...");
                allowed = strbuf_steal(&b);
                if (!allowed)
                        return -ENOMEM;
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %ld: element '%s' is not allowed in <%s> (allowed there: %s)",
                                    xmlGetLineNo(c), (const char *) c->name, (const char *) n->name, allowed);
        }
        return report_in_children(n, report_unknown_in, reterr);
}

/* An element at or below n that lacks an attribute every definition of it in its place requires: named
 * with its line. Returns < 0 when one was reported, 0 when none is there. */
static int report_missing_in(const xmlNode *n, VbError *reterr) {
        const char *parent = n->parent && n->parent->type == XML_ELEMENT_NODE ? (const char *) n->parent->name : "";
        const xmlNode *root = n->doc ? xmlDocGetRootElement(n->doc) : NULL;
        const NameSet *req = n->ns || !root ? NULL : required_find((const char *) root->name, parent, (const char *) n->name);

        for (size_t i = 0; req && i < req->n; i++)
                if (!xmlHasProp(n, (const xmlChar *) req->names[i]))
                        return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                            "line %ld: element '%s': attribute '%s' is missing (required on <%s>%s%s%s)",
                                            xmlGetLineNo(n), (const char *) n->name, req->names[i],
                                            (const char *) n->name, *parent ? " in <" : "", parent, *parent ? ">" : "");
        return report_in_children(n, report_missing_in, reterr);
}

static void hints_build(void) {
        size_t n = 0;
        Defines d = { .by_name = xmlHashCreate(0) };

        required = xmlHashCreate(0);
        children = xmlHashCreate(0);
        while (conf_schema_files[n].name)
                n++;
        xmlDocPtr docs[n + 1];
        for (size_t i = 0; i < n; i++) {
                const ConfSchemaFile *f = &conf_schema_files[i];

                docs[i] = xmlReadMemory(f->data, (int) f->size, f->name, NULL, XML_PARSE_NONET);
                if (docs[i])
                        defines_collect(&d, xmlDocGetRootElement(docs[i]));
        }
        for (size_t i = 0; i < n; i++)
                if (docs[i]) {
                        hints_walk(xmlDocGetRootElement(docs[i]));
                        ranges_walk(&d, xmlDocGetRootElement(docs[i]));
                        required_walk(&d, xmlDocGetRootElement(docs[i]));
                }
        for (size_t i = 0; i < n; i++)
                xmlFreeDoc(docs[i]);
        xmlHashFree(d.by_name, NULL);
        free(d.nodes);
}

static void hints_load(void) {
        (void) pthread_once(&hints_once, hints_build);
}

static bool hint_has_value(const AttrHint *h, const char *v) {
        for (size_t i = 0; i < h->n_values; i++)
                if (streq(h->values[i], v))
                        return true;
        return false;
}

static const AttrHint *value_refused(const char *element, const char *attr, const char *value);
static int report_value(const xmlNode *n, const char *attr, const char *value, const AttrHint *h, VbError *reterr);

static int report_attribute(const xmlError *e, VbError *reterr) {
        const char *attr = e->str1, *el = e->str2;
        xmlNode *node = e->node;
        _cleanup_free_ char *v = node ? (char *) xmlGetProp(node, (const xmlChar *) attr) : NULL;
        _cleanup_free_ char *expected = NULL;
        int line = node ? (int) xmlGetLineNo(node) : e->line;
        const AttrHint *h;
        StrBuf b = STRBUF_NULL;

        hints_load();
        if (node && v && (h = value_refused(el, attr, v)))
                return report_value(node, attr, v, h, reterr);
        h = hint_find(el, attr, false);
        if (!h)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': unknown attribute '%s'", line, el, attr);
        if (h->n_values == 0 || (v && hint_has_value(h, v)))
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': attribute '%s' has invalid value '%s' or is not allowed here",
                                    line, el, attr, strempty(v));
        for (size_t i = 0; i < h->n_values; i++)
                strbuf_appendf(&b, "%s%s", i ? ", " : "", h->values[i]);
        expected = strbuf_steal(&b);
        return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                            "line %d: element '%s': attribute '%s' has invalid value '%s' (expected %s)",
                            line, el, attr, strempty(v), strempty(expected));
}

static bool whole_number(const char *v) {
        v += *v == '-';
        return *v && strspn(v, "0123456789") == strlen(v);
}

/* What a closed hint takes, as a sentence's end: "a whole number from 1 to 8", "one of a, b". */
static char *expected_text(const AttrHint *h) {
        StrBuf b = STRBUF_NULL;

        if (h->ranged) {
                if (isinf(h->max))
                        strbuf_appendf(&b, "a whole number of at least %.0Lf", h->min);
                else if (isinf(h->min))
                        strbuf_appendf(&b, "a whole number of at most %.0Lf", h->max);
                else
                        strbuf_appendf(&b, "a whole number from %.0Lf to %.0Lf", h->min, h->max);
        }
        if (h->listed && h->n_values > 0)
                strbuf_appendf(&b, "%s", h->ranged ? ", or one of " : "one of ");
        for (size_t i = 0; h->listed && i < h->n_values; i++)
                strbuf_appendf(&b, "%s%s", i ? ", " : "", h->values[i]);
        return strbuf_steal(&b);
}

static void trim(char *v) {
        size_t l = strlen(v), skip = strspn(v, " \t\r\n");

        while (l > skip && strchr(" \t\r\n", v[l - 1]))
                l--;
        memmove(v, v + skip, l - skip);
        v[l - skip] = 0;
}

/* The hint of a value that no definition of its name takes (outside every range, in no list), or NULL. */
static const AttrHint *value_refused(const char *element, const char *attr, const char *value) {
        _cleanup_free_ char *v = strdup(value);
        const AttrHint *h = hint_find(element, attr, false);

        if (!v || !h || h->open || !(h->ranged || h->listed))
                return NULL;
        if (h->listed && hint_has_value(h, value))
                return NULL;
        trim(v); /* XML Schema's numbers may carry white space around them */
        if (h->ranged && whole_number(v)) {
                long double x = strtold(v, NULL);
                if (x >= h->min && x <= h->max)
                        return NULL;
        }
        return h;
}

static int report_value(const xmlNode *n, const char *attr, const char *value, const AttrHint *h, VbError *reterr) {
        _cleanup_free_ char *expected = expected_text(h);

        if (!expected)
                return -ENOMEM;
        if (attr)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %ld: element '%s': attribute '%s' has invalid value '%s' (expected %s)",
                                    xmlGetLineNo(n), (const char *) n->name, attr, value, expected);
        return vb_error_set(reterr, VB_ERROR_INVALID_XML, "line %ld: element '%s': invalid value '%s' (expected %s)",
                            xmlGetLineNo(n), (const char *) n->name, value, expected);
}

/* An element's own text when it has nothing else (no child elements), or NULL. */
static char *only_text(const xmlNode *n) {
        for (const xmlNode *c = n->children; c; c = c->next)
                if (c->type != XML_TEXT_NODE)
                        return NULL;
        return n->children ? (char *) xmlNodeGetContent(n) : NULL;
}

/* libxml2 says only that an element does not fit an interleave: look in it for a number out of the
 * range its type allows, and name that one. Returns < 0 when one was reported, 0 when none is there. */
static int report_values_in(const xmlNode *n, VbError *reterr) {
        _cleanup_free_ char *text = only_text(n);
        const AttrHint *h;

        for (const xmlAttr *a = n->properties; a; a = a->next) {
                _cleanup_free_ char *v = (char *) xmlNodeGetContent((const xmlNode *) a);

                if (v && (h = value_refused((const char *) n->name, (const char *) a->name, v)))
                        return report_value(n, (const char *) a->name, v, h, reterr);
        }
        if (text && (h = value_refused((const char *) n->name, TEXT_KEY, text)))
                return report_value(n, NULL, text, h, reterr);
        return report_in_children(n, report_values_in, reterr);
}

static const char *node_name(const xmlError *e) {
        const xmlNode *n = e->node;

        return n && n->name ? (const char *) n->name : "?";
}

/* A value its type refuses, where no hint names the rule (another definition of the same name takes any
 * text): libxml2 gives the type, and the value only for attributes; an element's text is read here. */
static int report_datatype(const xmlError *e, int line, VbError *reterr) {
        _cleanup_free_ char *text = NULL, *v = NULL;
        const char *value = e->str2;
        long double min, max;

        if (isempty(value) && e->node && ((const xmlNode *) e->node)->type == XML_ELEMENT_NODE &&
            (text = only_text(e->node))) {
                text[strcspn(text, "\n")] = 0;
                value = text;
        }
        if (!type_range(e->str1, &min, &max))
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "line %d: element '%s': value '%s' is not a valid %s",
                                    line, node_name(e), strempty(value), strempty(e->str1));
        v = strdup(strempty(value));
        if (!v)
                return -ENOMEM;
        trim(v);
        if (whole_number(v) && strtold(v, NULL) >= min && strtold(v, NULL) <= max)
                /* a valid number of the type, outside the bounds or form this place gives it */
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': value '%s' is out of the range or form allowed here",
                                    line, node_name(e), v);
        if (isinf(max))
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': invalid value '%s' (expected a whole number of at least %.0Lf)",
                                    line, node_name(e), v, min);
        return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                            "line %d: element '%s': invalid value '%s' (expected a whole number from %.0Lf to %.0Lf)",
                            line, node_name(e), v, min, max);
}

static int error_priority(const xmlError *e) {
        switch (e->code) {
        case XML_RELAXNG_ERR_INVALIDATTR:
                return 6;
        case XML_RELAXNG_ERR_ELEMWRONG:
        case XML_RELAXNG_ERR_EXTRACONTENT:
        case XML_RELAXNG_ERR_ELEMNAME:
        case XML_RELAXNG_ERR_NOELEM:
                return 5;
        case XML_RELAXNG_ERR_DATATYPE:
        case XML_RELAXNG_ERR_VALUE:
        case XML_RELAXNG_ERR_LIST:
        case XML_RELAXNG_ERR_NOTELEM:
                return 4;
        case XML_RELAXNG_ERR_ATTRVALID:
        case XML_RELAXNG_ERR_CONTENTVALID:
                return 1;
        default:
                return 2;
        }
}

int conf_schema_report(const xmlError *errors, size_t n, VbError *reterr) {
        const xmlError *e = NULL;
        int line;

        for (size_t i = 0; i < n; i++)
                if (!e || error_priority(&errors[i]) > error_priority(e))
                        e = &errors[i];
        if (!e)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "Document does not match the schema.");
        line = e->node ? (int) xmlGetLineNo(e->node) : e->line;
        /* Some errors (an interleave's) carry no node: the others reported with it point at the place. */
        for (size_t i = 0; i < n && line <= 0; i++)
                if (errors[i].node)
                        line = (int) xmlGetLineNo(errors[i].node);
        if (e->code != XML_RELAXNG_ERR_INVALIDATTR) {
                const xmlNode *at = e->node;
                int r = 0;

                for (size_t i = 0; i < n && !at; i++)
                        at = errors[i].node;
                if (at && at->type == XML_ELEMENT_NODE) {
                        hints_load();
                        r = report_values_in(at, reterr);
                        if (r < 0)
                                return r;
                        r = report_missing_in(at, reterr);
                        if (r < 0)
                                return r;
                        /* libxml2 names only the parent when a child does not fit an interleave, may call a
                         * stray child a missing one, and says only "not expected there" of an element: a child
                         * whose name is never allowed in its parent is named, with its line and the names
                         * allowed there. (An unexpected child, EXTRACONTENT, is already named.) */
                        if (e->code == XML_RELAXNG_ERR_INTEREXTRA || e->code == XML_RELAXNG_ERR_NOELEM)
                                r = report_unknown_in(at, reterr);
                        else if ((e->code == XML_RELAXNG_ERR_ELEMWRONG || e->code == XML_RELAXNG_ERR_ELEMNAME) &&
                                 at->parent && at->parent->type == XML_ELEMENT_NODE)
                                r = report_unknown_in(at->parent, reterr);
                        if (r < 0)
                                return r;
                }
        }
        /* libxml2 names no value here: the element's text is what was refused. */
        if (e->code == XML_RELAXNG_ERR_VALUE && e->node && ((const xmlNode *) e->node)->type == XML_ELEMENT_NODE) {
                _cleanup_free_ char *v = (char *) xmlNodeGetContent(e->node);

                if (v) {
                        v[strcspn(v, "\n")] = 0;
                        return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                            "line %d: element '%s': '%s' is not one of the values allowed here",
                                            line, node_name(e), v);
                }
        }
        switch (e->code) {
        case XML_RELAXNG_ERR_INTEREXTRA:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s' does not fit here: not allowed in this place, given "
                                    "twice, or its attributes or content are not what is expected",
                                    line, strempty(e->str1));
        case XML_RELAXNG_ERR_INVALIDATTR:
                return report_attribute(e, reterr);
        case XML_RELAXNG_ERR_ELEMWRONG:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "line %d: element '%s' is not allowed here",
                                    line, strempty(e->str1));
        case XML_RELAXNG_ERR_EXTRACONTENT:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': unexpected child element '%s'",
                                    line, strempty(e->str1), strempty(e->str2));
        case XML_RELAXNG_ERR_ELEMNAME:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s' found where element '%s' was expected",
                                    line, strempty(e->str2), strempty(e->str1));
        case XML_RELAXNG_ERR_NOELEM:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': missing child element '%s'",
                                    line, node_name(e), strempty(e->str1));
        case XML_RELAXNG_ERR_DATATYPE:
                return report_datatype(e, line, reterr);
        default: {
                _cleanup_free_ char *msg = strdup(strempty(e->message));

                if (!msg)
                        return -ENOMEM;
                msg[strcspn(msg, "\n")] = 0;
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "line %d: element '%s': %s",
                                    line, node_name(e), msg);
        }
        }
}
